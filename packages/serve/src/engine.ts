// The model side of the server: libllama's model and one context with --parallel sequences decoded
// from the JS thread (llama/), the LoRA adapters loaded on it, and the slot pool that hands out
// sequences. node-llama-cpp loads the vocabulary only: its tokenizer, the GGUF metadata and the grammars.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';
import { QtkError, fileError } from '@qtk/core';
import { autoVariant } from '@qtk/engine';
import type { LoraSpec, ServeOptions } from './options.js';
import { LlamaDirect } from './llama/direct.js';
import { DecodeScheduler } from './llama/scheduler.js';
import type { Decoder } from './generate.js';
import { SlotPool, type Slot } from './slots.js';

export interface Adapter {
  id: number;
  path: string;
  /** The default scale, used by requests that name no adapters; changed by POST /lora-adapters. */
  scale: number;
}

/** Most tokens in one llama_decode (prompt chunks and one token per generating sequence). */
const BATCH_SIZE = 512;

export class Engine {
  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly direct: LlamaDirect,
    readonly adapters: Adapter[],
    readonly modelId: string,
    readonly pool: SlotPool,
    readonly batching: DecodeScheduler,
  ) {}

  static async load(opts: ServeOptions): Promise<Engine> {
    if (!existsSync(opts.model)) throw fileError(opts.model, 'model file not found', 'Pass the path of a .gguf model (qtk convert makes one)');
    const loras: LoraSpec[] = opts.lora ?? [];
    for (const l of loras) {
      if (!existsSync(l.path)) throw fileError(l.path, 'LoRA adapter file not found', 'Pass --lora adapter.gguf[:scale] with an existing GGUF LoRA (llama.cpp\'s convert_lora_to_gguf.py writes one from a PEFT adapter)');
      if (!Number.isFinite(l.scale)) throw new QtkError(`--lora ${l.path}: scale ${l.scale} is not a finite number. Use e.g. --lora ${l.path}:0.5.`);
    }
    const parallel = opts.parallel ?? 1;
    if (!Number.isInteger(parallel) || parallel < 1 || parallel > 64) throw new QtkError(`--parallel ${parallel}: expected an integer from 1 to 64. Pick how many requests run at once.`);
    // Decoding runs in one build of libllama: CUDA when --gpu (the default) finds its package and a driver, else
    // the CPU. node-llama-cpp (vocabulary only) loads the same build, so one ggml registers its backends.
    const variant = opts.gpu === false ? 'cpu' : autoVariant();
    const llama = await getLlama({ gpu: variant === 'cpu' ? false : variant, build: 'never', logLevel: LlamaLogLevel.error });
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: opts.model, vocabOnly: true });
    } catch (err) {
      await llama.dispose();
      throw fileError(opts.model, `llama.cpp could not load the model (${(err as Error).message})`, 'Check that it is a complete GGUF file of a supported architecture (qtk inspect shows it)', err);
    }
    const contextSize = opts.ctx ?? Math.min(4096, model.trainContextSize);
    if (!Number.isInteger(contextSize) || contextSize < 16) throw new QtkError(`--ctx ${contextSize}: expected an integer of at least 16 tokens per sequence.`);
    const threads = opts.threads ?? llama.cpuMathCores;
    let direct: LlamaDirect;
    try {
      direct = LlamaDirect.load({ model: opts.model, contextSize, sequences: parallel, threads, batchSize: Math.min(BATCH_SIZE, contextSize * parallel), loras: loras.map((l) => l.path), variant });
    } catch (err) {
      await model.dispose();
      await llama.dispose();
      throw err;
    }
    const adapters = loras.map((l, id) => ({ id, path: l.path, scale: l.scale }));
    const modelId = opts.alias ?? basename(opts.model).replace(/\.gguf$/i, '');
    const queue = opts.queue ?? 4 * parallel;
    const batching = new DecodeScheduler(direct);
    try {
      if (adapters.length > 0) direct.setLoraScales(adapters.map((a) => a.scale));
    } catch (err) {
      batching.dispose();
      direct.dispose();
      await model.dispose();
      await llama.dispose();
      throw err;
    }
    const pool = new SlotPool(parallel, queue, adapters.map((a) => a.scale), async (scales) => {
      // Only called while no sequence is busy: cached prompts were computed with other weights, drop them.
      direct.setLoraScales(scales);
      batching.clearAll();
    });
    return new Engine(llama, model, direct, adapters, modelId, pool, batching);
  }

  get contextSize(): number {
    return this.direct.options.contextSize;
  }

  /** Rows of the token embedding: the token ids the model accepts. */
  get vocabularySize(): number {
    const embd = this.model.fileInfo.fullTensorInfo?.find((t) => t.name === 'token_embd.weight');
    if (embd) return Number(embd.dimensions[1]);
    const tokens = (this.model.fileInfo.metadata as unknown as { tokenizer?: { ggml?: { tokens?: readonly unknown[] } } }).tokenizer?.ggml?.tokens;
    return tokens?.length ?? 0; // unknown: accept no raw ids rather than let one index past the logits
  }

  get chatTemplate(): string | undefined {
    const t = (this.model.fileInfo.metadata as { tokenizer?: { chat_template?: unknown } }).tokenizer?.chat_template;
    return typeof t === 'string' ? t : undefined;
  }

  /** Prompt tokens sequence `index` already holds: llama-server's slot choice by prompt similarity. A match
   *  under a tenth of the prompt (a shared template header) does not count, so unrelated requests take the
   *  lowest free sequence. */
  sharedPrefix(index: number, prompt: readonly number[]): number {
    const held = this.batching.held(index);
    const n = Math.min(held.length, prompt.length);
    let i = 0;
    while (i < n && held[i] === prompt[i]) i++;
    return i * 10 >= prompt.length ? i : 0;
  }

  /** What generate() needs to run on the sequence of `slot`. */
  decoder(slot: Slot): Decoder {
    return { direct: this.direct, scheduler: this.batching, sequence: slot.index };
  }

  /** Scales for one request: llama-server semantics, adapters a request does not name run at 0. */
  scalesFor(requested: { id: number; scale: number }[] | undefined): number[] {
    if (requested === undefined) return this.adapters.map((a) => a.scale);
    const scales = this.adapters.map(() => 0);
    for (const r of requested) scales[r.id] = r.scale;
    return scales;
  }

  async dispose(): Promise<void> {
    this.batching.dispose();
    this.direct.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
