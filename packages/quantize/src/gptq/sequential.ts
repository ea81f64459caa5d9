// True-sequential calibration for `qtk quantize --method gptq`: the engine walks the model one layer at a
// time. The residual stream entering layer i (one f32 row per calibration token) is kept between layers;
// layer i's Hessians come from running layer i alone on it, and once layer i's weights are quantized the
// stream is carried through layer i with those weights (dequantized, in a one-layer scratch buffer that
// replaces the matmuls by name), so layer i+1 sees what the quantized model gives it. Memory: the
// residual stream, one layer's Hessians and one layer's dequantized weights.
// The embeddings enter unquantized, and `output.weight` (written first in llama.cpp's tensor order, before
// any layer is quantized) takes its Hessian from the unquantized model.
import { GgufReader, QtkError, createProgress } from '@qtk/core';
import { GgmlContext, HessianCollector, Model, contextWindows, loadEvalData, readModelParams, type Session, type Tensor } from '@qtk/engine';
import type { CalibrationOptions } from './calibrate.js';

export interface LayerHessian {
  /** Shared by the weights that read the same input. */
  key: string;
  nIn: number;
  H: Float32Array;
}

export class SequentialCalibration {
  private residual: Float32Array[] = [];
  /** The layer the residual stream enters. */
  private layer = 0;
  private group: string | undefined;
  private hessians = new Map<string, LayerHessian>();
  /** Dequantized weights of `layer` (ggml layout, rows of ne0), filled slab by slab. */
  private quantized = new Map<string, { ne: number[]; values: Float32Array }>();
  private readonly progress;

  private constructor(
    private readonly model: Model,
    private readonly session: Session,
    private readonly windows: number[][],
    readonly tokens: number,
    private readonly calibOutput: boolean,
  ) {
    const p = model.params;
    this.progress = createProgress({ title: 'gptq calibration', total: 2 * p.nLayer * windows.length, kind: 'count', unit: 'windows' });
  }

  static async open(model: string, o: CalibrationOptions): Promise<SequentialCalibration> {
    const reader = await GgufReader.open(model);
    let nVocab: number;
    try {
      nVocab = readModelParams(reader).nVocab;
    } finally {
      await reader.close();
    }
    const want = o.tokens ?? 32768;
    const data = await loadEvalData(model, nVocab, { data: o.calib, maxTokens: want });
    const tokens = data.tokens.slice(0, want);
    const windows = contextWindows({ ...data, tokens }, Math.min(o.ctx ?? 512, Math.floor(tokens.length / 2)), data.source);
    const m = await Model.load(model, { threads: o.threads });
    const s = m.session({ nCtx: windows[0]!.length, nBatch: windows[0]!.length });
    return new SequentialCalibration(m, s, windows, windows.length * windows[0]!.length, o.calibOutput !== false && m.weights.tensors.has('output.weight'));
  }

  get windowCount(): number {
    return this.windows.length;
  }

  /** The Hessian of a weight's input, collected once per layer (or for output.weight); undefined when no matmul reads it. */
  async hessian(name: string): Promise<LayerHessian | undefined> {
    const m = /^blk\.(\d+)\./.exec(name);
    // blocks past the trunk (the MTP block) are not run by the engine: they keep plain rounding
    const group = name === 'output.weight' && this.calibOutput ? 'output' : m && Number(m[1]) < this.model.params.nLayer ? `blk.${m[1]}` : undefined;
    if (!group) return undefined;
    if (group !== this.group) {
      if (m) {
        const il = Number(m[1]);
        if (il < this.layer) throw new Error(`layer ${il} asked for after layer ${this.layer}: tensors must come in layer order`);
        while (this.layer < il) this.advance();
        this.collect(group, { from: il, to: il }, (n) => n.startsWith(`${group}.`));
      } else this.collect(group, undefined, (n) => n === 'output.weight');
    }
    return this.hessians.get(name);
  }

  /** Records rows [row, row + nRows) of a quantized weight of the current layer, as ggml will dequantize them. */
  quantizedRows(name: string, ne: readonly number[], row: number, values: Float32Array): void {
    const m = /^blk\.(\d+)\./.exec(name);
    const il = m ? Number(m[1]) : -1;
    if (il < this.layer || il >= this.model.params.nLayer) return;
    // a layer restored from a checkpoint is never calibrated: the stream reaches it here
    while (this.layer < il) this.advance();
    let q = this.quantized.get(name);
    if (!q) this.quantized.set(name, (q = { ne: [...ne], values: new Float32Array(ne.reduce((a, b) => a * b, 1)) }));
    q.values.set(values, row * ne[0]!);
  }

  private collect(group: string, layers: { from: number; to: number } | undefined, wants: (n: string) => boolean): void {
    const col = new HessianCollector(wants);
    const hooks = col.hooks();
    for (const [w, tokens] of this.windows.entries()) {
      this.session.reset();
      const span = layers ? { ...layers, input: layers.from > 0 ? this.residual[w] : undefined } : undefined;
      this.session.eval(tokens, { logits: layers ? 'none' : 'all', hooks: { ...hooks, layers: span } });
      if (layers) this.progress.tick(1, `${group} Hessians`);
    }
    this.hessians.clear();
    for (const [key, e] of col.entries) {
      if (!e.sum.every(Number.isFinite)) throw new QtkError(`${this.model.path}: non-finite activations reach ${key} on the calibration text. Check the model with qtk eval ppl`, { file: this.model.path });
      const h = { key, nIn: e.nIn, H: HessianCollector.hessian(e) };
      for (const n of e.names) this.hessians.set(n, h);
    }
    this.group = group;
  }

  /** Carries the residual stream through `layer` with its quantized weights. */
  private advance(): void {
    const il = this.layer;
    const be = this.model.backend;
    const ctx = this.quantized.size > 0 ? new GgmlContext(be.lib, this.quantized.size) : undefined;
    const byName = new Map<string, Tensor>();
    for (const [name, q] of this.quantized) byName.set(name, ctx!.newTensor('F32', q.ne, name));
    const buf = ctx ? be.allocContext(ctx) : undefined;
    try {
      for (const [name, q] of this.quantized) be.setData(byName.get(name)!, q.values);
      const nEmbd = this.model.params.nEmbd;
      for (const [w, tokens] of this.windows.entries()) {
        this.session.reset();
        const output = new Float32Array(tokens.length * nEmbd);
        this.session.eval(tokens, {
          logits: 'none',
          hooks: {
            mm: (b, _w, x, name) => { const t = byName.get(name); return t ? b.g.mulMat(t, x) : undefined; },
            layers: { from: il, to: il, input: il > 0 ? this.residual[w] : undefined, output },
          },
        });
        this.residual[w] = output;
        this.progress.tick(1, `layer ${il} quantized forward`);
      }
    } finally {
      buf?.free();
      ctx?.free();
    }
    this.quantized.clear();
    this.layer++;
  }

  close(): void {
    this.progress.done();
    this.session.free();
    this.model.free();
  }
}
