// Scalar building blocks of the reference forward pass (llm.c style): activations are Float64Array,
// row-major [T, n]; weights are Float32Array [out, in] exactly as decoded from the checkpoint.
// Every sum accumulates in float64, so the reference is "exact math" on the stored weights.

export type Rounding = (x: number) => number;

/** y[t, o] = Σ_i W[o, i] · x[t, i]. `round` emulates a runtime that rounds activations before the matmul. */
export function matmul(x: Float64Array, T: number, W: Float32Array, out: number, inp: number, round?: Rounding): Float64Array {
  if (x.length !== T * inp) throw new Error(`matmul: expected x of ${T}x${inp}, got ${x.length} values`);
  if (W.length !== out * inp) throw new Error(`matmul: expected W of ${out}x${inp}, got ${W.length} values`);
  const xs = round ? x.map(round) : x;
  const y = new Float64Array(T * out);
  for (let t = 0; t < T; t++) {
    const xo = t * inp;
    for (let o = 0; o < out; o++) {
      const wo = o * inp;
      let s = 0;
      for (let i = 0; i < inp; i++) s += W[wo + i]! * xs[xo + i]!;
      y[t * out + o] = s;
    }
  }
  return y;
}

/**
 * RMSNorm over each row of `dim` values: x / sqrt(mean(x²) + eps) · g, where g = 1 + w for the
 * zero-centred norms of Qwen3.5 (HF `Qwen3_5RMSNorm`) and g = w for Qwen3 and the GDN gated norm.
 */
export function rmsnorm(x: Float64Array, dim: number, w: Float32Array, eps: number, zeroCentred: boolean): Float64Array {
  if (w.length !== dim || x.length % dim !== 0) throw new Error(`rmsnorm: expected rows of ${dim} and a weight of ${dim}, got ${x.length} values and ${w.length} weights`);
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += dim) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r + i]! * x[r + i]!;
    const inv = 1 / Math.sqrt(ss / dim + eps);
    for (let i = 0; i < dim; i++) y[r + i] = x[r + i]! * inv * (zeroCentred ? 1 + w[i]! : w[i]!);
  }
  return y;
}

/** x · rsqrt(Σx² + eps) over each row (the FLA / HF `l2norm`, eps inside the root). */
export function l2normRows(x: Float64Array, dim: number, eps = 1e-6): Float64Array {
  const y = new Float64Array(x.length);
  for (let r = 0; r < x.length; r += dim) {
    let ss = 0;
    for (let i = 0; i < dim; i++) ss += x[r + i]! * x[r + i]!;
    const inv = 1 / Math.sqrt(ss + eps);
    for (let i = 0; i < dim; i++) y[r + i] = x[r + i]! * inv;
  }
  return y;
}

export const silu = (x: number): number => x / (1 + Math.exp(-x));
export const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));
/** torch.nn.functional.softplus (beta 1, threshold 20: linear above it). */
export const softplus = (x: number): number => (x > 20 ? x : Math.log1p(Math.exp(x)));

/** In-place softmax of v[0..n). */
export function softmaxInPlace(v: Float64Array, n = v.length): void {
  let m = -Infinity;
  for (let i = 0; i < n; i++) m = Math.max(m, v[i]!);
  let s = 0;
  for (let i = 0; i < n; i++) {
    v[i] = Math.exp(v[i]! - m);
    s += v[i]!;
  }
  for (let i = 0; i < n; i++) v[i] = v[i]! / s;
}

/** RoPE inverse frequencies for a rotary width `rot`: theta^(-2j/rot), j < rot/2. */
export function ropeInvFreq(rot: number, theta: number): Float64Array {
  const f = new Float64Array(rot / 2);
  for (let j = 0; j < rot / 2; j++) f[j] = 1 / theta ** ((2 * j) / rot);
  return f;
}

/**
 * HF `apply_rotary_pos_emb` with `rotate_half` on the first `rot` dims of one head vector at `offset`:
 * pairs (d, d + rot/2) turn by angle pos · invFreq[d]; dims ≥ rot pass through (partial rotary).
 */
export function ropeRotateHalf(x: Float64Array, offset: number, rot: number, angles: Float64Array): void {
  const half = rot / 2;
  for (let d = 0; d < half; d++) {
    const c = Math.cos(angles[d]!);
    const s = Math.sin(angles[d]!);
    const a = x[offset + d]!;
    const b = x[offset + d + half]!;
    x[offset + d] = a * c - b * s;
    x[offset + d + half] = b * c + a * s;
  }
}

/**
 * Causal softmax attention for one sequence with grouped-query heads (HF repeat_kv: query head h reads
 * KV head floor(h / (nq / nkv))). q [T, nq·hd], k and v [T, nkv·hd] → [T, nq·hd], scale hd^-0.5.
 */
export function causalAttention(q: Float64Array, k: Float64Array, v: Float64Array, T: number, nq: number, nkv: number, hd: number): Float64Array {
  const group = nq / nkv;
  if (!Number.isInteger(group)) throw new Error(`causalAttention: expected query heads (${nq}) to be a multiple of KV heads (${nkv})`);
  const scale = 1 / Math.sqrt(hd);
  const out = new Float64Array(T * nq * hd);
  const p = new Float64Array(T);
  for (let h = 0; h < nq; h++) {
    const kvh = Math.floor(h / group);
    for (let t = 0; t < T; t++) {
      const qo = (t * nq + h) * hd;
      for (let s = 0; s <= t; s++) {
        const ko = (s * nkv + kvh) * hd;
        let dot = 0;
        for (let d = 0; d < hd; d++) dot += q[qo + d]! * k[ko + d]!;
        p[s] = dot * scale;
      }
      softmaxInPlace(p, t + 1);
      for (let s = 0; s <= t; s++) {
        const vo = (s * nkv + kvh) * hd;
        for (let d = 0; d < hd; d++) out[qo + d] += p[s]! * v[vo + d]!;
      }
    }
  }
  return out;
}

/** SwiGLU MLP: down(silu(gate x) · up x). */
export function swiglu(x: Float64Array, T: number, gate: Float32Array, up: Float32Array, down: Float32Array, H: number, I: number, round?: Rounding): Float64Array {
  const g = matmul(x, T, gate, I, H, round);
  const u = matmul(x, T, up, I, H, round);
  for (let i = 0; i < g.length; i++) g[i] = silu(g[i]!) * u[i]!;
  return matmul(g, T, down, H, I, round);
}

export function addInPlace(a: Float64Array, b: Float64Array): void {
  for (let i = 0; i < a.length; i++) a[i] = a[i]! + b[i]!;
}
