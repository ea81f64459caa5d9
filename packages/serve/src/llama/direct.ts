// One model and one context of libllama, driven from the JS thread: a persistent ggml threadpool (as
// llama-server attaches one), the vocabulary, the pieces of tokens and the LoRA adapters of the context.
import { QtkError, fileError } from '@qtk/core';
import { koffi, type GgmlVariant } from '@qtk/engine';
import { llamaFns, quietly, type LlamaFns } from './binding.js';

export interface DirectOptions {
  model: string;
  /** Tokens per sequence. */
  contextSize: number;
  sequences: number;
  threads: number;
  /** Most tokens in one llama_decode. */
  batchSize: number;
  loras: readonly string[];
  /** The ggml build to decode with (default cpu); on a GPU build every layer is offloaded. */
  variant?: GgmlVariant;
}

/** ggml_threadpool_params (ggml.h): bool cpumask[512]; int n_threads; int prio; uint32 poll; bool strict_cpu; bool paused. */
const THREADPOOL_PARAMS_BYTES = 528;
/** ggml's default polling level (0..100): compute threads spin briefly before sleeping. */
const THREADPOOL_POLL = 50;
/** enum llama_flash_attn_type */
const FLASH_ATTN_AUTO = -1;
const threadpoolNew = koffi.proto('void *qtk_serve_threadpool_new(void *params)');
const threadpoolFree = koffi.proto('void qtk_serve_threadpool_free(void *tp)');

export class LlamaDirect {
  readonly nVocab: number;
  readonly vocab: unknown;
  /** Recurrent or hybrid: the state cannot be cut back to a shorter prefix. */
  readonly recurrent: boolean;
  private readonly pieces = new Map<number, Buffer>();
  private readonly specialPieces = new Map<number, Buffer>();
  private readonly pieceBuf = Buffer.alloc(256);
  private disposed = false;
  private readonly disposers: (() => void)[] = [];

  private constructor(
    readonly f: LlamaFns,
    readonly model: unknown,
    readonly ctx: unknown,
    readonly memory: unknown,
    private readonly threadpool: unknown,
    private readonly threadpoolFree: (tp: unknown) => void,
    readonly adapters: readonly unknown[],
    readonly options: DirectOptions,
  ) {
    this.vocab = f.modelVocab(model);
    this.nVocab = f.nVocab(this.vocab) as number;
    this.recurrent = (f.isRecurrent(model) as boolean) || (f.isHybrid(model) as boolean);
  }

  static load(opts: DirectOptions): LlamaDirect {
    const variant = opts.variant ?? 'cpu';
    const f = llamaFns(variant);
    const mp = f.modelDefaults() as Record<string, unknown>;
    // the whole model on the GPU, as llama-server -ngl 999; nothing to offload on the CPU build
    mp.n_gpu_layers = variant === 'cpu' ? 0 : 999;
    const model = quietly(f, () => f.modelLoad(opts.model, mp));
    if (!model) throw fileError(opts.model, 'llama.cpp could not load the model', 'Check that it is a complete GGUF file of a supported architecture (qtk inspect shows it)');
    const adapters: unknown[] = [];
    const fail = (err: QtkError): never => {
      for (const a of adapters) f.loraFree(a);
      f.modelFree(model);
      throw err;
    };
    for (const p of opts.loras) {
      const a = quietly(f, () => f.loraInit(model, p));
      if (!a) fail(fileError(p, 'llama.cpp could not load this LoRA adapter', 'Check that it was converted for this model (llama.cpp\'s convert_lora_to_gguf.py writes one from a PEFT adapter)'));
      adapters.push(a);
    }
    // node-llama-cpp's and llama-server's context settings: flash attention where the backend has it
    // (LLAMA_FLASH_ATTN_TYPE_AUTO), one physical batch = the logical batch, one KV stream per sequence
    const cp = Object.assign(f.contextDefaults() as Record<string, unknown>, {
      n_ctx: opts.contextSize * opts.sequences,
      n_batch: opts.batchSize,
      n_ubatch: opts.batchSize,
      n_seq_max: opts.sequences,
      n_threads: opts.threads,
      n_threads_batch: opts.threads,
      flash_attn_type: FLASH_ATTN_AUTO,
      no_perf: true,
    });
    const ctx = quietly(f, () => f.initFromModel(model, cp));
    if (!ctx) fail(fileError(opts.model, `could not create a context of ${opts.contextSize} tokens × ${opts.sequences} sequences`, 'Lower --ctx/--parallel'));
    // the CPU backend's threadpool, kept for the context's life so no decode starts threads
    const g = f.ggml;
    const lib = g as unknown as Record<string, (...a: unknown[]) => unknown>;
    const dev = Array.from({ length: Number(lib.ggml_backend_dev_count!()) }, (_, i) => lib.ggml_backend_dev_get!(i)).find((d) => lib.ggml_backend_dev_type!(d) === 0);
    const reg = lib.ggml_backend_dev_backend_reg!(dev);
    const newPool = lib.ggml_backend_reg_get_proc_address!(reg, 'ggml_threadpool_new');
    const freePool = lib.ggml_backend_reg_get_proc_address!(reg, 'ggml_threadpool_free');
    if (!newPool || !freePool) {
      f.free(ctx);
      fail(new QtkError('The CPU backend of this ggml build exports no ggml_threadpool_new. Install node-llama-cpp 3.21.1 as qtk pins it.'));
    }
    const params = Buffer.alloc(THREADPOOL_PARAMS_BYTES);
    params.writeInt32LE(opts.threads, 512);
    params.writeUInt32LE(THREADPOOL_POLL, 520);
    const tp = koffi.call(newPool, threadpoolNew, params);
    const tpFree = (p: unknown): void => void koffi.call(freePool, threadpoolFree, p);
    quietly(f, () => f.attachThreadpool(ctx, tp, null));
    return new LlamaDirect(f, model, ctx, f.memory(ctx), tp, tpFree, adapters, opts);
  }

  /** Bytes of one token's text, cached; `special`: control tokens written out (otherwise empty). */
  piece(token: number, special: boolean): Buffer {
    const cache = special ? this.specialPieces : this.pieces;
    let p = cache.get(token);
    if (p) return p;
    let n = this.f.tokenToPiece(this.vocab, token, this.pieceBuf, this.pieceBuf.length, 0, special) as number;
    if (n < 0) {
      const big = Buffer.alloc(-n);
      n = this.f.tokenToPiece(this.vocab, token, big, big.length, 0, special) as number;
      p = Buffer.from(big.subarray(0, n));
    } else p = Buffer.from(this.pieceBuf.subarray(0, n));
    cache.set(token, p);
    return p;
  }

  /** llama.cpp's tokenizer: BOS when the vocabulary adds it (addSpecial), special-token text parsed or kept literal. */
  tokenize(text: string, addSpecial = true, parseSpecial = false): number[] {
    const bytes = Buffer.from(text, 'utf8');
    const out = new Int32Array(bytes.length + 2);
    const n = this.f.tokenize(this.vocab, bytes, bytes.length, out, out.length, addSpecial, parseSpecial) as number;
    if (n < 0) throw new Error(`llama_tokenize needed ${-n} tokens, more than the ${out.length} given`);
    return Array.from(out.subarray(0, n));
  }

  isEog(token: number): boolean {
    return this.f.isEog(this.vocab, token) as boolean;
  }

  /** Sets the scale of every adapter (0 = off); llama.cpp applies them from the next decode. */
  setLoraScales(scales: readonly number[]): void {
    const active = this.adapters.map((a, i) => [a, scales[i] ?? 0] as const).filter(([, s]) => s !== 0);
    const ptrs = active.map(([a]) => a);
    const r = this.f.setLoras(this.ctx, ptrs.length ? ptrs : null, ptrs.length, ptrs.length ? new Float32Array(active.map(([, s]) => s)) : null) as number;
    if (r !== 0) throw new QtkError(`llama_set_adapters_lora failed (${r}) for scales ${scales.join(', ')}.`);
  }

  /** Runs `fn` when the context is freed (memory allocated for it elsewhere). */
  onDispose(fn: () => void): void {
    this.disposers.push(fn);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const fn of this.disposers) fn();
    this.f.detachThreadpool(this.ctx);
    this.threadpoolFree(this.threadpool);
    this.f.free(this.ctx);
    for (const a of this.adapters) this.f.loraFree(a);
    this.f.modelFree(this.model);
  }
}
