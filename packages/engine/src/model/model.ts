// A loaded GGUF model and evaluation sessions over it. A session owns the per-sequence state
// (attention KV cache, GDN conv + SSM states) in a backend buffer and evaluates tokens in chunks,
// carrying that state from one chunk to the next.
import { GgufReader, QtkError } from '@qtk/core';
import { Backend, GraphRunner, type BackendBuffer, type BackendOptions } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import { causalMask, type KvCache } from './attention.js';
import { layerWeights, rmsNormW, type BuildCtx } from './build.js';
import { convChannels, readModelParams, type ModelParams } from './hparams.js';
import { qwen3Layer, qwen3WeightSpecs } from './qwen3.js';
import { qwen35Layer, qwen35WeightSpecs, type GdnState } from './qwen35.js';
import { loadWeights, type LoadedWeights } from './weights.js';
import { LoraSet, type LoraSpec } from './lora.js';

export interface LoadOptions extends BackendOptions {
  /** Reuse a backend (and its loaded ggml build) instead of creating one. */
  backend?: Backend;
  /** CPU: keep eligible quantized matmul weights in llama.cpp's repacked layout (default true). */
  repack?: boolean;
  /** CPU: map the file and use its bytes in place (default true); false copies them into memory of our own. */
  mmap?: boolean;
}

export class Model {
  /** Run-time LoRA adapters every session applies (see applyLora). */
  private lora: LoraSet | undefined;

  private constructor(
    readonly path: string,
    readonly params: ModelParams,
    readonly backend: Backend,
    private readonly ownsBackend: boolean,
    readonly weights: LoadedWeights,
  ) {}

  static async load(path: string, opts: LoadOptions = {}): Promise<Model> {
    const reader = await GgufReader.open(path);
    try {
      const params = readModelParams(reader);
      const specs = params.arch === 'qwen3' ? qwen3WeightSpecs(params) : qwen35WeightSpecs(params);
      const backend = opts.backend ?? Backend.create(opts);
      try {
        const weights = await loadWeights(reader, backend, specs, { repack: opts.repack, mmap: opts.mmap });
        return new Model(path, params, backend, !opts.backend, weights);
      } catch (e) {
        if (!opts.backend) backend.free();
        throw e;
      }
    } finally {
      await reader.close();
    }
  }

  tensor(name: string): Tensor {
    const t = this.weights.tensors.get(name);
    if (!t) throw new Error(`${this.path}: weight ${name} is not loaded`);
    return t;
  }

  /** Matrix that maps the final hidden state to logits (token_embd when tied). */
  get outputWeight(): Tensor {
    return this.weights.tensors.get('output.weight') ?? this.tensor('token_embd.weight');
  }

  /** Applies GGUF LoRA adapters to every later evaluation (replacing any applied before). */
  async applyLora(specs: readonly LoraSpec[]): Promise<void> {
    const next = specs.length > 0 ? await LoraSet.load(this, specs) : undefined;
    this.lora?.free();
    this.lora = next;
  }

  /** The adapters' matmul hook, when adapters are applied. */
  get loraHooks(): GraphHooks | undefined {
    return this.lora?.hooks();
  }

  session(opts: SessionOptions = {}): Session {
    return new Session(this, opts);
  }

  free(): void {
    this.lora?.free();
    this.lora = undefined;
    this.weights.free();
    if (this.ownsBackend) this.backend.free();
  }
}

export interface SessionOptions {
  /** Longest text the KV cache holds (default: 4096, at most the training context). */
  nCtx?: number;
  /** Tokens per graph (default 512). */
  nBatch?: number;
}

/** Which logits one `eval` returns: all positions, the last, none, or listed positions. */
export type LogitsWanted = 'all' | 'last' | 'none' | readonly number[];

/** Ways into each chunk's graph: see every weight matmul while it is built, read results after it ran. */
export interface GraphHooks {
  /** Returns a replacement for w·x, or nothing to keep the plain matmul. Tensors to read later go in b.effects. */
  mm?: (b: BuildCtx, w: Tensor, x: Tensor, name: string) => Tensor | void;
  /**
   * Takes the chunk's logits [vocab, n] (the requested positions, in order; `positions` relative to the
   * tokens of `eval`) to reduce them in the graph; tensors to read later go in b.effects. With this hook
   * the logits are not read back: `eval` returns none.
   */
  logits?: (b: BuildCtx, logits: Tensor, positions: readonly number[]) => void;
  /** Runs once the chunk's graph has memory, before it computes: the place to set inputs the hooks added. */
  beforeCompute?: (backend: Backend) => void;
  /** Runs after the chunk's graph computed, while its tensors are still alive. */
  afterCompute?: (backend: Backend) => void;
  /**
   * Runs only layers from..to: the residual stream entering `from` is read from `input` (f32, nEmbd per
   * token of the eval) instead of the embeddings, and the one leaving `to` is written to `output`. No
   * logits unless `to` is the last layer. Lets a caller walk a model layer by layer (GPTQ calibration).
   */
  layers?: { from: number; to: number; input?: Float32Array; output?: Float32Array };
}

export interface EvalOptions {
  logits?: LogitsWanted;
  hooks?: GraphHooks;
  /** Called after each chunk's graph ran, with the chunk's start position and length. */
  afterChunk?: (start: number, length: number) => void;
}

export class Session {
  readonly nCtx: number;
  readonly nBatch: number;
  private readonly stateCtx: GgmlContext;
  private readonly stateBuf: BackendBuffer;
  private readonly kv = new Map<number, { k: Tensor; v: Tensor }>();
  private readonly gdn = new Map<number, GdnState>();
  private readonly runner: GraphRunner;
  private past = 0;
  private freed = false;

  constructor(readonly model: Model, opts: SessionOptions) {
    const p = model.params;
    this.nCtx = opts.nCtx ?? Math.min(4096, p.nCtxTrain);
    this.nBatch = Math.max(1, opts.nBatch ?? 512);
    if (!Number.isInteger(this.nCtx) || this.nCtx < 1) throw new QtkError(`context size ${opts.nCtx} is not a positive integer. Pass --ctx N with N ≥ 1.`);
    this.stateCtx = new GgmlContext(model.backend.lib, 2 * p.nLayer + 1);
    for (let il = 0; il < p.nLayer; il++) {
      if (p.arch === 'qwen35' && p.recurrent[il]) {
        this.gdn.set(il, {
          conv: this.stateCtx.newTensor('F32', [p.convKernel - 1, convChannels(p), 1], `conv_state.${il}`),
          ssm: this.stateCtx.newTensor('F32', [p.ssmState, p.ssmState, p.ssmHeads, 1], `ssm_state.${il}`),
        });
      } else {
        this.kv.set(il, {
          k: this.stateCtx.newTensor('F32', [p.headDim, p.nHeadKv, this.nCtx], `cache_k.${il}`),
          v: this.stateCtx.newTensor('F32', [p.headDim, p.nHeadKv, this.nCtx], `cache_v.${il}`),
        });
      }
    }
    this.stateBuf = model.backend.allocContext(this.stateCtx);
    this.stateBuf.clear(0);
    this.runner = new GraphRunner(model.backend);
  }

  /** Tokens evaluated since the last reset. */
  get nPast(): number {
    return this.past;
  }

  /** Forget the text: zero the recurrent states (the KV cache is simply overwritten). */
  reset(): void {
    this.past = 0;
    this.stateBuf.clear(0);
  }

  /**
   * Appends `tokens` to the sequence, in chunks of nBatch, and returns the requested logits
   * (row i = the distribution after the i-th requested position; positions are relative to `tokens`).
   */
  eval(tokens: ArrayLike<number>, opts: EvalOptions = {}): { logits: Float32Array; positions: number[] } {
    const T = tokens.length;
    const p = this.model.params;
    if (this.past + T > this.nCtx) {
      throw new QtkError(`${this.past} + ${T} tokens do not fit the context of ${this.nCtx}. Pass a larger --ctx, or evaluate shorter texts.`);
    }
    for (let i = 0; i < T; i++) {
      const id = tokens[i]!;
      if (!Number.isInteger(id) || id < 0 || id >= p.nVocab) throw new QtkError(`token id ${id} at position ${i} is outside the vocabulary of ${p.nVocab}. Tokenize with this model's tokenizer.`);
    }
    const want = opts.logits ?? 'all';
    const positions = want === 'all' ? [...Array(T).keys()] : want === 'last' ? (T > 0 ? [T - 1] : []) : want === 'none' ? [] : [...want];
    for (const q of positions) if (!Number.isInteger(q) || q < 0 || q >= T) throw new RangeError(`logit position ${q} outside 0..${T - 1}`);
    const sorted = [...new Set(positions)].sort((a, b) => a - b);
    const reduced = opts.hooks?.logits !== undefined;
    const logits = new Float32Array(reduced ? 0 : positions.length * p.nVocab);
    const rowOf = new Map<number, number[]>();
    positions.forEach((q, i) => rowOf.set(q, [...(rowOf.get(q) ?? []), i]));
    for (let start = 0; start < T; start += this.nBatch) {
      const len = Math.min(this.nBatch, T - start);
      const outs = sorted.filter((q) => q >= start && q < start + len);
      const chunkLogits = this.evalChunk(Array.from({ length: len }, (_, i) => tokens[start + i]!), start, outs.map((q) => q - start), opts.hooks);
      if (!reduced) outs.forEach((q, j) => {
        for (const row of rowOf.get(q)!) logits.set(chunkLogits.subarray(j * p.nVocab, (j + 1) * p.nVocab), row * p.nVocab);
      });
      opts.afterChunk?.(start, len);
    }
    return { logits, positions };
  }

  private evalChunk(tokens: number[], start: number, outRows: number[], hooks?: GraphHooks): Float32Array {
    const m = this.model;
    const p = m.params;
    const T = tokens.length;
    const nPast = this.past;
    // a graph holds at most as many nodes as its context holds tensors, so ggml's node limit can't trip
    const graphSize = 512 + p.nLayer * 256;
    const g = new GgmlContext(m.backend.lib, graphSize, graphSize);
    try {
      const b: BuildCtx = { g, effects: [], mm: (w, x) => g.mulMat(w, x) };
      const mmHook = hooks?.mm ?? m.loraHooks?.mm;
      if (mmHook) b.mm = (w, x, name) => mmHook(b, w, x, name) ?? g.mulMat(w, x);
      const ids = g.newTensor('I32', [T], 'inp_tokens');
      const multi = p.arch === 'qwen35';
      const pos = g.newTensor('I32', [T * (multi ? 4 : 1)], 'inp_pos');
      const mask = g.newTensor('F32', [nPast + T, T], 'kq_mask');
      const outIds = outRows.length > 0 && outRows.length < T ? g.newTensor('I32', [outRows.length], 'out_ids') : undefined;
      const span = hooks?.layers;
      const from = span?.from ?? 0, to = span?.to ?? p.nLayer - 1;
      if (from < 0 || to >= p.nLayer || from > to) throw new RangeError(`layers ${from}..${to} outside 0..${p.nLayer - 1}`);
      if (from > 0 && span?.input?.length !== undefined && span.input.length < (start + T) * p.nEmbd) throw new RangeError(`layer input holds ${span.input.length} values, ${(start + T) * p.nEmbd} needed`);
      if (from > 0 && !span?.input) throw new RangeError(`starting at layer ${from} needs the residual input`);
      if (to < p.nLayer - 1 && outRows.length > 0) throw new RangeError(`logits asked for, but the graph stops at layer ${to}`);
      const inX = from > 0 ? g.newTensor('F32', [p.nEmbd, T], 'inp_residual') : undefined;
      let x = inX ?? g.getRows(m.tensor('token_embd.weight'), ids);
      for (let il = from; il <= to; il++) {
        const lw = layerWeights(il, m.weights.tensors);
        const c = this.kv.get(il);
        const cache: KvCache | undefined = c ? { ...c, nPast } : undefined;
        const attn = { pos, mask, cache };
        x = p.arch === 'qwen3' ? qwen3Layer(b, p, lw, x, attn) : qwen35Layer(b, p, lw, x, { attn, gdn: this.gdn.get(il) });
      }
      let out: Tensor | undefined;
      if (outRows.length > 0) {
        let h = rmsNormW(b, x, m.tensor('output_norm.weight'), p.eps);
        if (outIds) h = g.getRows(h, outIds);
        out = b.mm(m.outputWeight, h, m.weights.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight');
        if (hooks?.logits) {
          hooks.logits(b, out, outRows.map((r) => start + r));
          out = undefined;
        }
      }
      // state writes first, then the logits, so nothing of this chunk is left unevaluated
      // inputs are expanded too, so the allocator gives them memory even when no layer reads them
      const inputs = [ids, pos, mask, ...(outIds ? [outIds] : []), ...(inX ? [inX] : [])];
      for (const t of inputs) m.backend.lib.ggml_set_input(t.ptr);
      const gf = this.runner.graph(g, [...inputs, ...b.effects, ...(out ? [out] : [x])]);
      this.runner.alloc(gf);
      const be = m.backend;
      be.setData(ids, Int32Array.from(tokens));
      const posData = new Int32Array(pos.ne[0]);
      for (let i = 0; i < T; i++) posData[i] = nPast + i;
      if (multi) for (let s = 1; s < 3; s++) posData.copyWithin(s * T, 0, T); // t = h = w = position, e = 0
      be.setData(pos, posData);
      be.setData(mask, causalMask(nPast, T));
      if (outIds) be.setData(outIds, Int32Array.from(outRows));
      if (inX) be.setData(inX, span!.input!.subarray(start * p.nEmbd, (start + T) * p.nEmbd));
      hooks?.beforeCompute?.(be);
      this.runner.compute(gf);
      this.past += T;
      if (span?.output && !out) be.getF32(x, span.output.subarray(start * p.nEmbd, (start + T) * p.nEmbd));
      hooks?.afterCompute?.(be);
      return out ? be.getF32(out) : new Float32Array(0);
    } finally {
      g.free();
    }
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.runner.free();
    this.stateBuf.free();
    this.stateCtx.free();
  }
}
