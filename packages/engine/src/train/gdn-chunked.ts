// The gated delta rule in chunked form, built only from ops with a ggml backward (GATED_DELTA_NET has
// none). Per value head, zero initial state, tokens t = 1..T:
//   S'_t = exp(g_t) S_{t−1};  d_t = β_t (v_t − S'_tᵀ k_t);  S_t = S'_t + k_t d_tᵀ;  o_t = S_tᵀ q_t / √dk
// Within a chunk of C tokens (prefix sums G of g, decays D[r,s] = exp(G_r − G_s) for s ≤ r):
//   A = strictly-lower(β_r (k_r·k_s) D),  Tm = (I + A)⁻¹,  U = Tm diag(β) V,  W = Tm diag(β e^G) K,
//   Δ = U − W S0,  O = diag(e^G) Q S0 + (Q Kᵀ ∘ D) Δ,  S_C = e^{G_C} S0 + (diag(e^{G_C − G}) K)ᵀ Δ.
// Everything but the chunk-to-chunk state update is batched over chunks and heads. (I + A)⁻¹ uses
// recursive block doubling (stable in f32; the Neumann product form is not for correlated keys).
// The upper triangle is masked to −inf BEFORE exp, else exp overflows and inf·0 gives NaN.
import type { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import { matmul, transposeC, type GraphConsts } from './ops.js';

/** (I + A)⁻¹ for strictly lower-triangular A [C, C, H, N], C a power of two. */
function invUnitLower(g: GgmlContext, cs: GraphConsts, A: Tensor, C: number): Tensor {
  const I = cs.square('I', C, (s, r) => s === r);
  let Tm: Tensor | undefined;
  for (let b = 2; b <= C; b *= 2) {
    const hb = b / 2;
    // the part of A inside b-blocks but outside b/2-blocks: (I + Tm Al)⁻¹ = I − Tm Al exactly
    const Al = g.mul(A, cs.square(`lvl${b}`, C, (s, r) => Math.floor(s / b) === Math.floor(r / b) && Math.floor(s / hb) !== Math.floor(r / hb)));
    Tm = Tm ? g.sub(Tm, matmul(g, matmul(g, Tm, Al), Tm)) : g.add(g.neg(Al), I);
  }
  return Tm ?? I;
}

/** Smallest power of two ≥ n, capped at `max`. */
export function gdnChunkSize(n: number, max = 64): number {
  let c = 2;
  while (c < n && c < max) c *= 2;
  return c;
}

/**
 * q, k [dk, Hk, T]; v [dv, H, T]; gate, beta [1, H, T] (all contiguous f32; q, k already l2-normed)
 * → o [dv, H, T]. Value head h reads key head h mod Hk (the converter's tiled V-head order).
 */
export function gatedDeltaChunked(g: GgmlContext, cs: GraphConsts, q: Tensor, k: Tensor, v: Tensor, gate: Tensor, beta: Tensor, C: number): Tensor {
  const [dk, Hk, T] = q.ne;
  const [dv, H] = v.ne;
  const N = Math.ceil(T / C);
  const Tp = N * C;
  if (Hk !== H) {
    q = g.repeat(q, [dk, H, T]);
    k = g.repeat(k, [dk, H, T]);
  }
  q = g.scale(q, 1 / Math.sqrt(dk));
  if (Tp !== T) {
    // zero tail tokens (k = v = g = β = 0) change nothing before them
    const pad = (t: Tensor, d: number) => g.set(cs.zeros([d, H, Tp]), t, [d * 4, d * H * 4, d * H * Tp * 4], 0);
    q = pad(q, dk); k = pad(k, dk); v = pad(v, dv); gate = pad(gate, 1); beta = pad(beta, 1);
  }
  // [d, H, C, N] → [d, C, H, N]: chunk n is the contiguous block n of ne3
  const chunks = (t: Tensor, d: number) => g.cont(g.permute(g.reshape(t, [d, H, C, N]), 0, 2, 1, 3));
  const Qc = chunks(q, dk), Kc = chunks(k, dk), Vc = chunks(v, dv);
  // per-token scalars with the token index in ne0: [C, H, N]
  const tok = (t: Tensor) => g.cont(g.permute(g.reshape(t, [H, C, N]), 1, 0, 2, 3));
  const gC = tok(gate), bC = tok(beta);
  const Gc = g.mulMat(cs.square('Lincl', C, (s, r) => s <= r), gC); // G_r = Σ_{s≤r} g_s
  const Gsuf = g.mulMat(cs.square('Usuf', C, (s, r) => s > r), gC); // G_C − G_r
  const row = (t: Tensor) => g.reshape(t, [1, C, H, N]);
  const gam = row(g.exp(Gc));
  const gamSuf = row(g.exp(Gsuf));
  const gamTot = g.reshape(g.exp(g.sumRows(gC)), [1, 1, H, N]); // e^{G_C}
  const b4 = row(bC);
  const Gr = g.repeat(g.reshape(Gc, [1, C, H, N]), [C, C, H, N]);
  const Gs = g.repeat(g.reshape(Gc, [C, 1, H, N]), [C, C, H, N]);
  const D = g.exp(g.diagMaskInf(g.sub(Gr, Gs), 0)); // [C(s), C(r), H, N]
  const A = g.mul(g.mul(g.mul(g.mulMat(Kc, Kc), D), b4), cs.square('Lstrict', C, (s, r) => s < r));
  const Tinv = invUnitLower(g, cs, A, C);
  const UT = g.mulMat(Tinv, transposeC(g, g.mul(Vc, b4))); // Uᵀ [C, dv, H, N]
  const W = matmul(g, Tinv, g.mul(Kc, g.mul(b4, gam))); // [dk, C, H, N]
  const P = g.mul(g.mulMat(Kc, Qc), D); // (q_r·k_s) D[r,s]
  const Qg = g.mul(Qc, gam);
  const KbarT = transposeC(g, g.mul(Kc, gamSuf)); // [C, dk, H, N]

  const slice = (t: Tensor, n: number) => g.view(t, [t.ne[0], t.ne[1], t.ne[2]], [t.nb[1], t.nb[2]], n * t.nb[3]);
  let St: Tensor | undefined; // Sᵀ per head: [dk, dv, H]
  let out = cs.zeros([dv, H, Tp]);
  for (let n = 0; n < N; n++) {
    const dT = St ? g.sub(slice(UT, n), g.mulMat(slice(W, n), St)) : slice(UT, n); // Δᵀ [C, dv, H]
    let On = g.mulMat(dT, slice(P, n)); // [dv, C, H]
    if (St) On = g.add(On, g.mulMat(St, slice(Qg, n)));
    // chunk n's [dv, C, H] block goes to tokens nC.. of the [dv, H, Tp] output
    out = g.set(out, On, [dv * H * 4, dv * 4, dv * H * Tp * 4], n * C * dv * H * 4);
    const upd = g.mulMat(slice(KbarT, n), dT);
    St = St ? g.add(g.mul(St, slice(gamTot, n)), upd) : upd;
  }
  if (Tp !== T) out = g.cont(g.view(out, [dv, H, T], [dv * 4, dv * H * 4], 0));
  return out;
}
