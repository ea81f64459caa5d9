// The model side of the server: one node-llama-cpp model, one context with --parallel sequences,
// the LoRA adapters loaded on it, and the slot pool that hands out sequences.
import { existsSync } from 'node:fs';
import { basename } from 'node:path';
import { getLlama, LlamaLogLevel, type Llama, type LlamaContext, type LlamaContextSequence, type LlamaModel } from 'node-llama-cpp';
import { QtkError, fileError } from '@qtk/core';
import type { LoraSpec, ServeOptions } from './options.js';
import { SlotPool, type Slot } from './slots.js';

export interface Adapter {
  id: number;
  path: string;
  /** The default scale, used by requests that name no adapters; changed by POST /lora-adapters. */
  scale: number;
}

/** node-llama-cpp 3.21.1 sets adapters only at context creation in its public API; this internal
 *  method wraps llama_set_adapters_lora, which llama-server also calls between batches. */
type ContextWithLoras = LlamaContext & { _setLoras(loras: { filePath: string; scale?: number }[]): Promise<void> };

export class Engine {
  private constructor(
    readonly llama: Llama,
    readonly model: LlamaModel,
    readonly context: LlamaContext,
    readonly sequences: LlamaContextSequence[],
    readonly adapters: Adapter[],
    readonly modelId: string,
    readonly pool: SlotPool,
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
    const llama = await getLlama({ gpu: opts.gpu ?? 'auto', build: 'never', logLevel: LlamaLogLevel.error });
    let model: LlamaModel;
    try {
      model = await llama.loadModel({ modelPath: opts.model });
    } catch (err) {
      await llama.dispose();
      throw fileError(opts.model, `llama.cpp could not load the model (${(err as Error).message})`, 'Check that it is a complete GGUF file of a supported architecture (qtk inspect shows it)', err);
    }
    const contextSize = opts.ctx ?? Math.min(4096, model.trainContextSize);
    if (!Number.isInteger(contextSize) || contextSize < 16) throw new QtkError(`--ctx ${contextSize}: expected an integer of at least 16 tokens per sequence.`);
    let context: LlamaContext;
    try {
      context = await model.createContext({
        sequences: parallel,
        contextSize,
        threads: opts.threads,
        lora: loras.length > 0 ? { adapters: loras.map((l) => ({ filePath: l.path, scale: l.scale })) } : undefined,
      });
    } catch (err) {
      await model.dispose();
      await llama.dispose();
      const culprit = loras.length > 0 ? loras.map((l) => l.path).join(', ') : opts.model;
      throw fileError(culprit, `could not create a context of ${contextSize} tokens × ${parallel} sequences (${(err as Error).message})`, 'Check that each adapter was trained for this model, or lower --ctx/--parallel', err);
    }
    const sequences = Array.from({ length: parallel }, () => context.getSequence());
    const adapters = loras.map((l, id) => ({ id, path: l.path, scale: l.scale }));
    const modelId = opts.alias ?? basename(opts.model).replace(/\.gguf$/i, '');
    const queue = opts.queue ?? 4 * parallel;
    const ctxWithLoras = context as ContextWithLoras;
    if (adapters.length > 0 && typeof ctxWithLoras._setLoras !== 'function') {
      throw new QtkError('This node-llama-cpp build cannot change LoRA scales at run time (no LlamaContext._setLoras). Install node-llama-cpp 3.21.1 as qtk pins it.');
    }
    const pool = new SlotPool(parallel, queue, adapters.map((a) => a.scale), async (scales) => {
      // Only called while no sequence is busy: cached prompts were computed with other weights, drop them.
      await ctxWithLoras._setLoras(adapters.map((a, i) => ({ filePath: a.path, scale: scales[i] ?? 0 })));
      await Promise.all(sequences.map((s) => s.clearHistory()));
    });
    return new Engine(llama, model, context, sequences, adapters, modelId, pool);
  }

  get contextSize(): number {
    return this.sequences[0]!.contextSize;
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

  sequence(slot: Slot): LlamaContextSequence {
    return this.sequences[slot.index]!;
  }

  /** Scales for one request: llama-server semantics, adapters a request does not name run at 0. */
  scalesFor(requested: { id: number; scale: number }[] | undefined): number[] {
    if (requested === undefined) return this.adapters.map((a) => a.scale);
    const scales = this.adapters.map(() => 0);
    for (const r of requested) scales[r.id] = r.scale;
    return scales;
  }

  async dispose(): Promise<void> {
    await this.context.dispose();
    await this.model.dispose();
    await this.llama.dispose();
  }
}
