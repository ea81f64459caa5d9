// Float64 oracle for the LoRA training engine: the plain-TS reference forward with each target's
// weight replaced by W + scale·B·A in Hugging Face space (W optionally another base, e.g. the
// dequantized Q4_K weights), and the next-token NLL summed in float64 over the counted positions.
import { type GgufTensorInfo, type LoraTarget } from '@qtk/core';
import { rewriteGguf } from '@qtk/fixtures/test-support';
import { GgmlContext, GraphRunner, ReferenceWeights, referenceForward, type LoraParam, type Model } from '../src/index.js';

export interface RefLossOptions {
  params: readonly LoraParam[];
  scale: number;
  /** HF name → replacement base weight (HF layout); default: the checkpoint's. */
  base?: ReadonlyMap<string, Float32Array>;
}

export class RefLoss {
  private constructor(readonly hfDir: string, private readonly lm: Float32Array, readonly hidden: number, readonly vocab: number) {}

  static async open(hfDir: string): Promise<RefLoss> {
    const w = await ReferenceWeights.open(hfDir);
    try {
      const [V, H] = w.shape('lm_head.weight') as [number, number];
      return new RefLoss(hfDir, await w.get('lm_head.weight'), H, V);
    } finally {
      await w.close();
    }
  }

  /** Σ −log p(tokens[t+1] | ..t) over t with lossMask[t+1] = 1 (one document). */
  async lossSum(tokens: Int32Array, lossMask: Uint8Array, o: RefLossOptions): Promise<number> {
    const byWeight = new Map(o.params.map((p) => [`${p.module}.weight`, p]));
    const adjustWeight = (name: string, values: Float32Array): Float32Array | Float64Array => {
      const p = byWeight.get(name);
      const w = o.base?.get(name) ?? values;
      if (!p) return w;
      const [r, inp] = p.shapeA;
      const out = p.shapeB[0];
      const d = Float64Array.from(w);
      for (let i = 0; i < out; i++) {
        for (let k = 0; k < r; k++) {
          const bv = o.scale * p.b[i * r + k]!;
          if (bv === 0) continue;
          for (let j = 0; j < inp; j++) d[i * inp + j] += bv * p.a[k * inp + j]!;
        }
      }
      return d;
    };
    const { hidden } = await referenceForward(this.hfDir, Array.from(tokens), { hiddenOnly: true, adjustWeight });
    const H = this.hidden, V = this.vocab;
    let sum = 0;
    const z = new Float64Array(V);
    for (let t = 0; t + 1 < tokens.length; t++) {
      if (!lossMask[t + 1]) continue;
      let m = -Infinity;
      for (let v = 0; v < V; v++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += this.lm[v * H + i]! * hidden![t * H + i]!;
        z[v] = s;
        if (s > m) m = s;
      }
      let se = 0;
      for (let v = 0; v < V; v++) se += Math.exp(z[v]! - m);
      sum += m + Math.log(se) - z[tokens[t + 1]!]!;
    }
    return sum;
  }
}

/** Seeded uniform values in (−s, s). */
export function uniform(n: number, s: number, seed: number): Float32Array {
  let x = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) / 2 ** 32 * 2 - 1) * s);
}

export const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};

/** A weight of a loaded model as f32 values (dequantized by ggml's get_rows), in GGUF row order. */
export function weightValues(model: Model, name: string): Float32Array {
  const w = model.tensor(name);
  const be = model.backend;
  const g = new GgmlContext(be.lib, 8, 8);
  const runner = new GraphRunner(be);
  try {
    const ids = g.newTensor('I32', [w.ne[1]]);
    be.lib.ggml_set_input(ids.ptr);
    const rows = g.getRows(w, ids);
    const gf = runner.graph(g, [ids, rows]);
    runner.alloc(gf);
    be.setData(ids, Int32Array.from({ length: w.ne[1] }, (_, i) => i));
    runner.compute(gf);
    return be.getF32(rows);
  } finally {
    runner.free();
    g.free();
  }
}

/** A GGUF-order weight [out, in] back to HF order: GGUF row i is HF row rowPerm[i], column j is colPerm[j]. */
export function ggufToHf(w: Float32Array, t: Pick<LoraTarget, 'inFeatures' | 'outFeatures' | 'rowPerm' | 'colPerm'>): Float32Array {
  const { inFeatures: n, outFeatures: m, rowPerm, colPerm } = t;
  const out = new Float32Array(w.length);
  for (let i = 0; i < m; i++) {
    const hi = rowPerm ? rowPerm[i]! : i;
    for (let j = 0; j < n; j++) out[hi * n + (colPerm ? colPerm[j]! : j)] = w[i * n + j]!;
  }
  return out;
}

/** A copy of `src` (loaded as `model`) with every non-f32 weight written as its f32 values. */
export async function dequantizedGguf(model: Model, src: string, dst: string): Promise<void> {
  // tensors the engine does not load (the MTP block) are copied as they are
  const deq = (t: GgufTensorInfo) => t.type !== 'F32' && t.type !== 'I32' && model.weights.tensors.has(t.name);
  await rewriteGguf(src, dst, (t) => ({ ne: [...t.ne], type: deq(t) ? 'F32' : t.type }), (t, bytes) => {
    if (!deq(t)) return bytes;
    const v = weightValues(model, t.name);
    return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  });
}
