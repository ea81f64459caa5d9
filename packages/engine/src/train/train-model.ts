// LoRA training on a loaded GGUF model: the frozen base stays in its own types, the LoRA parameters
// live in Hugging Face module space on the host (what the optimizer and the adapter writers see) and
// in GGUF space on the backend (permuted by the one module map). One step:
//   1. forward, one layer graph at a time, keeping only each layer's input (host f32);
//   2. the loss head over token chunks: logits of a chunk, cross-entropy and ∂/∂hidden, then discarded;
//   3. backward, last layer first: rebuild the layer with gradients, seed it with ∂L/∂output through
//      loss = Σ(output ∘ gradient), read ∂L/∂input and the layer's LoRA gradients.
import { GgufReader, hparamsFromGguf, loraTargets, permuteLoraA, permuteLoraB, QtkError, unpermuteLoraA, unpermuteLoraB, type LoraTarget } from '@qtk/core';
import { GraphRunner, type BackendBuffer } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import type { Ptr } from '../ggml/lib.js';
import type { Tensor } from '../ggml/tensor.js';
import { layerWeights, rmsNormW, type BuildCtx } from '../model/build.js';
import type { Model } from '../model/model.js';
import { trainLayer, type TrainInputs } from './layers.js';
import { dropoutMask, dropoutSeed, initLoraA, loraScale, selectsTarget, streamSeed, validateLoraConfig, type LoraConfig } from './lora.js';
import { GraphConsts } from './ops.js';
import { rowLayout, type RowLayout } from './row.js';

export interface TrainModelOptions {
  /** Longest row (tokens) a step takes. */
  seqLen: number;
  /** Tokens per loss-head chunk (default: about 16 M logits per chunk). */
  lossChunk?: number;
}

export interface TrainBatch {
  tokens: Int32Array;
  /** 1 where the token is a training target (its prediction from the previous position counts). */
  lossMask: Uint8Array;
  /** Packed rows: the document of each token; nothing crosses a change of id. */
  documentIds?: Int32Array;
}

/** One target's parameters, HF module space: a [r, in] and b [out, r], row-major. */
export interface LoraParam {
  module: string;
  tensor: string;
  a: Float32Array;
  b: Float32Array;
  shapeA: [number, number];
  shapeB: [number, number];
}

export interface LoraGrad {
  module: string;
  a: Float32Array;
  b: Float32Array;
}

export interface StepResult {
  /** Σ next-token NLL over counted positions (nats). */
  lossSum: number;
  /** Counted positions. */
  nTokens: number;
  grads: LoraGrad[];
}

interface Slot {
  target: LoraTarget;
  a: Tensor; // GGUF space [in, r]
  b: Tensor; // GGUF space [r, out]
  hostA: Float32Array; // HF space
  hostB: Float32Array;
}

const GRAPH_NODES = 32768;
const LOGITS_PER_CHUNK = 1 << 24;

export class LoraTrainModel {
  private readonly runner: GraphRunner;
  private readonly headRunner: GraphRunner;
  private labelBuf: Float32Array | undefined;
  private freed = false;

  private constructor(
    readonly model: Model,
    readonly config: Required<Omit<LoraConfig, 'targets'>> & { targets?: readonly string[] },
    readonly seqLen: number,
    readonly lossChunk: number,
    private readonly slots: Slot[],
    private readonly byTensor: Map<string, Slot>,
    private readonly paramCtx: GgmlContext,
    private readonly paramBuf: BackendBuffer,
    /** Weight types whose OUT_PROD (∂x of a frozen matmul) the backend lacks: copied to f32 per graph. */
    private readonly f32Copy: Set<string>,
  ) {
    this.runner = new GraphRunner(model.backend);
    this.headRunner = new GraphRunner(model.backend);
  }

  /** Compute buffers so far (bytes): the largest layer graph (fwd+bwd) and the largest loss-head chunk. */
  get graphBytes(): { layer: number; head: number } {
    return { layer: this.runner.bufferSize, head: this.headRunner.bufferSize };
  }

  static async create(model: Model, lora: LoraConfig, opts: TrainModelOptions): Promise<LoraTrainModel> {
    validateLoraConfig(lora);
    if (!Number.isInteger(opts.seqLen) || opts.seqLen < 1) throw new QtkError(`seqLen ${opts.seqLen} must be a positive integer.`);
    const p = model.params;
    const r = await GgufReader.open(model.path);
    let targets: LoraTarget[];
    try {
      targets = loraTargets(p.arch, hparamsFromGguf((k) => r.get(k), model.path)).filter((t) => selectsTarget(lora.targets, t));
    } finally {
      await r.close();
    }
    if (targets.length === 0) throw new QtkError(`LoRA targets ${JSON.stringify(lora.targets)} select no module of this ${p.arch} model. Use attn, gdn, mlp or module names it has.`);
    // every frozen matmul is differentiated w.r.t. its input (OUT_PROD), which cannot read the repacked layout
    const repacked = [...model.weights.repacked];
    if (repacked.length > 0) {
      throw new QtkError(`${model.path}: ${repacked.length} weights (e.g. ${repacked[0]}) are held in the CPU_REPACK layout, which the backward pass cannot read. Load the model with { repack: false } for training.`);
    }
    const config = { rank: lora.rank, alpha: lora.alpha, rslora: lora.rslora ?? false, dropout: lora.dropout ?? 0, seed: lora.seed ?? 0, targets: lora.targets };
    const ctx = new GgmlContext(model.backend.lib, 2 * targets.length);
    const slots: Slot[] = targets.map((t) => ({
      target: t,
      a: ctx.newTensor('F32', [t.inFeatures, lora.rank], `lora_a.${t.tensor}`.slice(0, 63)),
      b: ctx.newTensor('F32', [lora.rank, t.outFeatures], `lora_b.${t.tensor}`.slice(0, 63)),
      hostA: initLoraA(lora.rank, t.inFeatures, streamSeed(config.seed, t.layer * 64 + targets.indexOf(t))),
      hostB: new Float32Array(t.outFeatures * lora.rank),
    }));
    for (const s of slots) {
      model.backend.lib.ggml_set_param(s.a.ptr);
      model.backend.lib.ggml_set_param(s.b.ptr);
    }
    const buf = model.backend.allocContext(ctx);
    const lossChunk = opts.lossChunk ?? Math.max(1, Math.floor(LOGITS_PER_CHUNK / p.nVocab));
    const f32Copy = unsupportedOutProdTypes(model);
    const t = new LoraTrainModel(model, config, opts.seqLen, lossChunk, slots, new Map(slots.map((s) => [s.target.tensor, s])), ctx, buf, f32Copy);
    for (const s of slots) t.upload(s);
    return t;
  }

  get scale(): number {
    return loraScale(this.config);
  }

  get targets(): readonly LoraTarget[] {
    return this.slots.map((s) => s.target);
  }

  /** Copies of the parameters, HF module space. */
  params(): LoraParam[] {
    const r = this.config.rank;
    return this.slots.map((s) => ({
      module: s.target.module,
      tensor: s.target.tensor,
      a: s.hostA.slice(),
      b: s.hostB.slice(),
      shapeA: [r, s.target.inFeatures],
      shapeB: [s.target.outFeatures, r],
    }));
  }

  /** Writes parameters back (HF module space), e.g. after an optimizer step; matched by module name. */
  setParams(params: readonly Pick<LoraParam, 'module' | 'a' | 'b'>[]): void {
    const byModule = new Map(this.slots.map((s) => [s.target.module, s]));
    for (const p of params) {
      const s = byModule.get(p.module);
      if (!s) throw new QtkError(`setParams: module ${p.module} is not a LoRA target of this model.`);
      if (p.a.length !== s.hostA.length || p.b.length !== s.hostB.length) {
        throw new QtkError(`setParams: ${p.module} needs a of ${s.hostA.length} and b of ${s.hostB.length} values, got ${p.a.length} and ${p.b.length}.`);
      }
      s.hostA.set(p.a);
      s.hostB.set(p.b);
      this.upload(s);
    }
  }

  private upload(s: Slot): void {
    const be = this.model.backend;
    be.setData(s.a, permuteLoraA(s.hostA, s.target.inFeatures, s.target.colPerm));
    be.setData(s.b, permuteLoraB(s.hostB, this.config.rank, s.target.rowPerm));
  }

  /**
   * Σ NLL and counted positions, forward only (no dropout). `perToken` also returns each position's NLL
   * (NaN where not counted), computing the head one token at a time.
   */
  evalLoss(batch: TrainBatch, opts: { perToken?: boolean } = {}): { lossSum: number; nTokens: number; perToken?: Float64Array } {
    const row = this.layout(batch);
    const hs = this.forward(batch, row, undefined);
    const { lossSum, nTokens, perToken } = this.head(hs[hs.length - 1]!, batch, row, false, opts.perToken ? 1 : this.lossChunk);
    return opts.perToken ? { lossSum, nTokens, perToken } : { lossSum, nTokens };
  }

  /** Loss sum over counted positions and its gradients w.r.t. every LoRA parameter (HF space). */
  lossAndGradients(batch: TrainBatch, opts: { dropoutSeed?: number } = {}): StepResult {
    const row = this.layout(batch);
    const drop = this.config.dropout > 0 ? (opts.dropoutSeed ?? 0) : undefined;
    const hs = this.forward(batch, row, drop);
    const { lossSum, nTokens, grad } = this.head(hs[hs.length - 1]!, batch, row, true, this.lossChunk);
    const grads = new Map<Slot, LoraGrad>();
    let gy = grad!;
    for (let il = this.model.params.nLayer - 1; il >= 0; il--) {
      gy = this.layerBackward(il, hs[il]!, gy, row, drop, grads);
    }
    return { lossSum, nTokens, grads: this.slots.map((s) => grads.get(s) ?? { module: s.target.module, a: new Float32Array(s.hostA.length), b: new Float32Array(s.hostB.length) }) };
  }

  private layout(batch: TrainBatch): RowLayout {
    const T = batch.tokens.length;
    if (T < 1 || T > this.seqLen) throw new QtkError(`a row of ${T} tokens does not fit seqLen ${this.seqLen}. Pack rows of 1..${this.seqLen} tokens.`);
    if (batch.lossMask.length !== T) throw new QtkError(`lossMask has ${batch.lossMask.length} entries for ${T} tokens.`);
    if (batch.documentIds && batch.documentIds.length !== T) throw new QtkError(`documentIds has ${batch.documentIds.length} entries for ${T} tokens.`);
    const V = this.model.params.nVocab;
    for (let i = 0; i < T; i++) {
      const id = batch.tokens[i]!;
      if (!(id >= 0 && id < V)) throw new QtkError(`token id ${id} at position ${i} is outside the vocabulary of ${V}. Tokenize with this model's tokenizer.`);
    }
    return rowLayout(T, batch.documentIds);
  }

  // ---------------------------------------------------------------- graphs

  private newGraphCtx(): GgmlContext {
    return new GgmlContext(this.model.backend.lib, GRAPH_NODES, GRAPH_NODES, true);
  }

  /** Layer inputs x_0..x_L (host f32, [T, nEmbd] row-major). */
  private forward(batch: TrainBatch, row: RowLayout, drop: number | undefined): Float32Array[] {
    const hs: Float32Array[] = [this.embed(batch.tokens)];
    for (let il = 0; il < this.model.params.nLayer; il++) hs.push(this.layerForward(il, hs[il]!, row, drop));
    return hs;
  }

  private embed(tokens: Int32Array): Float32Array {
    const g = new GgmlContext(this.model.backend.lib, 8, 8);
    try {
      const ids = g.newTensor('I32', [tokens.length]);
      this.model.backend.lib.ggml_set_input(ids.ptr);
      const x = g.getRows(this.model.tensor('token_embd.weight'), ids);
      const gf = this.runner.graph(g, [ids, x]);
      this.runner.alloc(gf);
      this.model.backend.setData(ids, tokens);
      this.runner.compute(gf);
      return this.model.backend.getF32(x);
    } finally {
      g.free();
    }
  }

  /** The LoRA-augmented BuildCtx of one layer graph, plus the inputs it needs uploaded. */
  private buildCtx(g: GgmlContext, row: RowLayout, drop: number | undefined, il: number): { b: BuildCtx; uploads: (() => void)[] } {
    const be = this.model.backend;
    const uploads: (() => void)[] = [];
    const scale = this.scale;
    const b: BuildCtx = {
      g,
      effects: [],
      mm: (w, x, name) => {
        const wf = this.f32Copy.has(w.type) ? g.cpy(w, g.newTensor('F32', [...w.ne])) : w;
        const y = g.mulMat(wf, x);
        const s = this.byTensor.get(name);
        if (!s) return y;
        let xin = x;
        if (drop !== undefined) {
          const mask = g.newTensor('F32', [...x.ne]);
          be.lib.ggml_set_input(mask.ptr);
          const seed = dropoutSeed(drop, il, this.slots.indexOf(s));
          uploads.push(() => be.setData(mask, dropoutMask(this.config.dropout, seed, x.ne[0] * x.ne[1])));
          xin = g.mul(x, mask);
        }
        return g.add(y, g.scale(g.mulMat(s.b, g.mulMat(s.a, xin)), scale));
      },
    };
    return { b, uploads };
  }

  private trainInputs(g: GgmlContext, row: RowLayout): { io: TrainInputs; upload: () => void } {
    const p = this.model.params;
    const be = this.model.backend;
    const T = row.T;
    const multi = p.arch === 'qwen35';
    const consts = new GraphConsts(g);
    const pos = g.newTensor('I32', [T * (multi ? 4 : 1)]);
    const mask = g.newTensor('F32', [T, T]);
    for (const t of [pos, mask]) be.lib.ggml_set_input(t.ptr);
    const K = p.arch === 'qwen35' ? p.convKernel : 0;
    const convKeep = row.docs.length > 1 && K > 0 ? Array.from({ length: K }, (_, i) => consts.get(`keep${i}`, [1, T], () => row.convKeep(K, i))) : undefined;
    const io: TrainInputs = { pos, mask, docs: row.docs, convKeep, consts };
    const upload = () => {
      const pd = new Int32Array(pos.ne[0]);
      pd.set(row.positions);
      if (multi) for (let s = 1; s < 3; s++) pd.set(row.positions, s * T); // t = h = w = position, e = 0
      be.setData(pos, pd);
      be.setData(mask, row.mask());
      consts.upload((t, d) => be.setData(t, d));
    };
    return { io, upload };
  }

  private layerForward(il: number, x: Float32Array, row: RowLayout, drop: number | undefined): Float32Array {
    const p = this.model.params;
    const g = this.newGraphCtx();
    try {
      const xt = g.newTensor('F32', [p.nEmbd, row.T]);
      this.model.backend.lib.ggml_set_input(xt.ptr);
      const { io, upload } = this.trainInputs(g, row);
      const { b, uploads } = this.buildCtx(g, row, drop, il);
      const y = trainLayer(b, p, layerWeights(il, this.model.weights.tensors), xt, io);
      const gf = this.runner.graph(g, [xt, io.pos, io.mask, ...io.consts.tensors(), y]);
      this.checkSupported(gf);
      this.runner.alloc(gf);
      this.model.backend.setData(xt, x);
      upload();
      uploads.forEach((u) => u());
      this.runner.compute(gf);
      return this.model.backend.getF32(y);
    } finally {
      g.free();
    }
  }

  private layerBackward(il: number, x: Float32Array, gy: Float32Array, row: RowLayout, drop: number | undefined, out: Map<Slot, LoraGrad>): Float32Array {
    const p = this.model.params;
    const lib = this.model.backend.lib;
    const be = this.model.backend;
    const g = this.newGraphCtx();
    try {
      const xt = g.newTensor('F32', [p.nEmbd, row.T]);
      lib.ggml_set_input(xt.ptr);
      const needDx = il > 0;
      if (needDx) lib.ggml_set_param(xt.ptr);
      const gyt = g.newTensor('F32', [p.nEmbd, row.T]);
      lib.ggml_set_input(gyt.ptr);
      const { io, upload } = this.trainInputs(g, row);
      const { b, uploads } = this.buildCtx(g, row, drop, il);
      const y = trainLayer(b, p, layerWeights(il, this.model.weights.tensors), xt, io);
      const loss = g.sum(g.mul(y, gyt));
      lib.ggml_set_loss(loss.ptr);
      const gf = this.runner.graph(g, [xt, gyt, io.pos, io.mask, ...io.consts.tensors(), loss]);
      lib.ggml_build_backward_expand(g.ptr, gf, null);
      const mine = this.slots.filter((s) => s.target.layer === il);
      const gradOf = (t: Tensor): Ptr | null => (lib.ggml_graph_get_grad(gf, t.ptr) as Ptr | null) ?? null;
      const outs: [Slot, Ptr | null, Ptr | null][] = mine.map((s) => [s, gradOf(s.a), gradOf(s.b)]);
      for (const [, ga, gb] of outs) for (const q of [ga, gb]) if (q) lib.ggml_set_output(q);
      const gx = needDx ? gradOf(xt) : null;
      if (gx) lib.ggml_set_output(gx);
      this.checkSupported(gf);
      this.runner.alloc(gf);
      be.setData(xt, x);
      be.setData(gyt, gy);
      upload();
      uploads.forEach((u) => u());
      lib.ggml_graph_reset(gf);
      this.runner.compute(gf);
      const read = (ptr: Ptr | null, n: number) => {
        const d = new Float32Array(n);
        if (ptr) lib.ggml_backend_tensor_get(ptr, d, 0, n * 4);
        return d;
      };
      const r = this.config.rank;
      for (const [s, ga, gb] of outs) {
        out.set(s, {
          module: s.target.module,
          a: unpermuteLoraA(read(ga, s.hostA.length), s.target.inFeatures, s.target.colPerm),
          b: unpermuteLoraB(read(gb, s.hostB.length), r, s.target.rowPerm),
        });
      }
      return read(gx, p.nEmbd * row.T);
    } finally {
      g.free();
    }
  }

  /** Next-token cross-entropy summed over counted positions, in token chunks; ∂L/∂x_L when asked. */
  private head(xL: Float32Array, batch: TrainBatch, row: RowLayout, withGrad: boolean, chunk: number): { lossSum: number; nTokens: number; grad?: Float32Array; perToken: Float64Array } {
    const p = this.model.params;
    const lib = this.model.backend.lib;
    const be = this.model.backend;
    const E = p.nEmbd, V = p.nVocab;
    const counted: number[] = [];
    for (let t = 0; t + 1 < row.T; t++) if (batch.lossMask[t + 1] && row.docOf[t + 1] === row.docOf[t]) counted.push(t);
    const grad = withGrad ? new Float32Array(E * row.T) : undefined;
    let lossSum = 0;
    const perToken = new Float64Array(row.T).fill(NaN);
    const outName = this.model.weights.tensors.has('output.weight') ? 'output.weight' : 'token_embd.weight';
    for (let c0 = 0; c0 < counted.length; c0 += chunk) {
      const rows = counted.slice(c0, c0 + chunk);
      const n = rows.length;
      const g = new GgmlContext(lib, 256, 256, true);
      try {
        const x = g.newTensor('F32', [E, n]);
        const labels = g.newTensor('F32', [V, n]);
        lib.ggml_set_input(x.ptr);
        lib.ggml_set_input(labels.ptr);
        if (withGrad) lib.ggml_set_param(x.ptr);
        const b: BuildCtx = { g, effects: [], mm: (w, xx) => g.mulMat(this.f32Copy.has(w.type) ? g.cpy(w, g.newTensor('F32', [...w.ne])) : w, xx) };
        const h = rmsNormW(b, x, this.model.tensor('output_norm.weight'), p.eps);
        const logits = b.mm(this.model.outputWeight, h, outName);
        // ggml's cross-entropy is the mean over rows; ×n gives the sum
        const loss = g.scale(g.crossEntropyLoss(logits, labels), n);
        lib.ggml_set_loss(loss.ptr);
        lib.ggml_set_output(loss.ptr);
        const gf = this.headRunner.graph(g, [x, labels, loss]);
        let gx: Ptr | null = null;
        if (withGrad) {
          lib.ggml_build_backward_expand(g.ptr, gf, null);
          gx = lib.ggml_graph_get_grad(gf, x.ptr) as Ptr | null;
          if (gx) lib.ggml_set_output(gx);
        }
        this.checkSupported(gf);
        this.headRunner.alloc(gf);
        const xs = new Float32Array(E * n);
        rows.forEach((t, i) => xs.set(xL.subarray(t * E, (t + 1) * E), i * E));
        be.setData(x, xs);
        // one host one-hot buffer per model, cleared after use: the chunk's labels are its largest host array
        const lab = (this.labelBuf ??= new Float32Array(V * this.lossChunk)).subarray(0, V * n);
        rows.forEach((t, i) => (lab[i * V + batch.tokens[t + 1]!] = 1));
        be.setData(labels, lab);
        rows.forEach((t, i) => (lab[i * V + batch.tokens[t + 1]!] = 0));
        if (withGrad) lib.ggml_graph_reset(gf);
        this.headRunner.compute(gf);
        const l = be.getF32(loss)[0]!;
        lossSum += l;
        if (n === 1) perToken[rows[0]!] = l;
        if (grad && gx) {
          const d = new Float32Array(E * n);
          lib.ggml_backend_tensor_get(gx, d, 0, d.byteLength);
          rows.forEach((t, i) => grad.set(d.subarray(i * E, (i + 1) * E), t * E));
        }
      } finally {
        g.free();
      }
    }
    return { lossSum, nTokens: counted.length, grad, perToken };
  }

  /** Every node must run on the chosen backend: name the op and backend instead of aborting. */
  private checkSupported(gf: Ptr): void {
    const be = this.model.backend;
    const lib = be.lib;
    const n = lib.ggml_graph_n_nodes(gf) as number;
    for (let i = 0; i < n; i++) {
      const node = lib.ggml_graph_node(gf, i) as Ptr;
      if (!lib.ggml_backend_supports_op(be.ptr, node)) {
        throw new QtkError(`the ${be.device.name} backend cannot run ggml op ${lib.ggml_op_desc(node) as string} (node ${i} of the training graph). Train with --device cpu.`);
      }
    }
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.runner.free();
    this.headRunner.free();
    this.paramBuf.free();
    this.paramCtx.free();
  }
}

/** Weight types of the targets' base matmuls whose OUT_PROD the backend does not run. */
function unsupportedOutProdTypes(model: Model): Set<string> {
  const out = new Set<string>();
  const lib = model.backend.lib;
  const seen = new Set<string>();
  for (const [name, w] of model.weights.tensors) {
    if (!name.startsWith('blk.') && name !== 'output.weight' && name !== 'token_embd.weight') continue;
    if (w.ne[1] === 1 || seen.has(w.type)) continue;
    seen.add(w.type);
    const g = new GgmlContext(lib, 4);
    try {
      const gy = g.newTensor('F32', [w.ne[1], 1]);
      const node = lib.ggml_out_prod(g.ptr, w.ptr, lib.ggml_transpose(g.ptr, gy.ptr)) as Ptr;
      if (!lib.ggml_backend_supports_op(model.backend.ptr, node)) out.add(w.type);
    } finally {
      g.free();
    }
  }
  return out;
}
