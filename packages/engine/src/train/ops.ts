// Differentiable building blocks for the training graphs: only ops that have a backward in ggml 0.23
// (mul_mat, mul, add, sub, scale, exp, neg, softplus, rms_norm, set, view, reshape, permute, cont…).
// SIGMOID, L2_NORM, SSM_CONV, CONCAT and GATED_DELTA_NET have none, so they are rebuilt here.
import type { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';

/** Constant tensors of one graph (masks, identities, zeros), filled after the graph is allocated. */
export class GraphConsts {
  private readonly map = new Map<string, { t: Tensor; fill: () => Float32Array }>();
  constructor(private readonly g: GgmlContext) {}

  get(key: string, ne: readonly number[], fill: () => Float32Array): Tensor {
    const have = this.map.get(key);
    if (have) return have.t;
    const t = this.g.newTensor('F32', ne);
    this.g.lib.ggml_set_input(t.ptr);
    this.map.set(key, { t, fill });
    return t;
  }

  /** [C, C] 0/1 matrix: entry (row r = ne1 index, column s = ne0 index) is pred(s, r). */
  square(key: string, C: number, pred: (s: number, r: number) => boolean): Tensor {
    return this.get(`${key}:${C}`, [C, C], () => {
      const a = new Float32Array(C * C);
      for (let r = 0; r < C; r++) for (let s = 0; s < C; s++) a[r * C + s] = pred(s, r) ? 1 : 0;
      return a;
    });
  }

  zeros(ne: readonly number[]): Tensor {
    return this.get(`zeros:${ne.join('x')}`, ne, () => new Float32Array(ne.reduce((a, b) => a * b, 1)));
  }

  tensors(): Tensor[] {
    return [...this.map.values()].map((e) => e.t);
  }

  upload(set: (t: Tensor, data: Float32Array) => void): void {
    for (const { t, fill } of this.map.values()) set(t, fill());
  }
}

/**
 * A same-shape reshape: a gradient barrier. Gradients flowing back through permute/transpose are
 * strided views, which the CPU backward of MUL/ADD/ACC cannot take and which read back in the wrong
 * order when they are a parameter's gradient; RESHAPE's backward makes them contiguous.
 */
export function barrier(g: GgmlContext, t: Tensor): Tensor {
  return g.reshape(t, [...t.ne]);
}

/** cont(permute(x)) behind a barrier. */
export function permuteC(g: GgmlContext, t: Tensor, a0: number, a1: number, a2: number, a3: number): Tensor {
  return g.cont(g.permute(barrier(g, t), a0, a1, a2, a3));
}

/** cont(transpose(x)) behind a barrier. */
export function transposeC(g: GgmlContext, t: Tensor): Tensor {
  return g.cont(g.transpose(barrier(g, t)));
}

/** Math matrix product X·Y batched over ne2/ne3: X [k, r], Y [n, k] → [n, r]. */
export function matmul(g: GgmlContext, x: Tensor, y: Tensor): Tensor {
  return g.mulMat(transposeC(g, y), x);
}

/** sigmoid(x) = exp(−softplus(−x)): SOFTPLUS has a backward, and this never overflows. */
export function sigmoidP(g: GgmlContext, x: Tensor): Tensor {
  return g.exp(g.neg(g.softplus(g.neg(x))));
}

/**
 * x / sqrt(Σx² + eps) over ne0, as rms_norm(x, eps/n)/√n: HF's l2norm (eps inside the root, 1e-6 in
 * the Qwen3.5 DeltaNet). ggml_l2_norm uses x / max(|x|, eps); they differ only when |x|² ~ eps.
 */
export function l2normP(g: GgmlContext, x: Tensor, eps: number): Tensor {
  const n = x.ne[0];
  return g.scale(g.rmsNorm(x, eps / n), 1 / Math.sqrt(n));
}

/**
 * Causal depthwise conv1d over tokens, as shifted views: x [C, T] (channels fastest), w [K, C]
 * (ssm_conv1d layout) → y[c, t] = Σ_i w[c, i] · x[c, t + i − (K−1)], with zero history. `keep[i]`
 * ([1, T] 0/1, optional) drops the taps that reach into an earlier document.
 */
export function causalConvP(g: GgmlContext, cs: GraphConsts, x: Tensor, w: Tensor, keep?: readonly Tensor[]): Tensor {
  const [C, T] = x.ne;
  const K = w.ne[0];
  const xp = g.set(cs.zeros([C, T + K - 1]), x, [C * 4, C * (T + K - 1) * 4, C * (T + K - 1) * 4], (K - 1) * C * 4);
  const wT = transposeC(g, w); // [C, K]
  let y: Tensor | undefined;
  for (let i = 0; i < K; i++) {
    let term = g.mul(g.view(xp, [C, T], [C * 4], i * C * 4), g.view(wT, [C, 1], [C * 4], i * C * 4));
    if (keep?.[i]) term = g.mul(term, keep[i]!);
    y = y ? g.add(y, term) : term;
  }
  return y!;
}
