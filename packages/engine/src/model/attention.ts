// Causal softmax attention with grouped-query heads and an optional KV cache carried between chunks.
import type { Tensor } from '../ggml/tensor.js';
import type { BuildCtx } from './build.js';

export interface KvCache {
  /** [headDim, nHeadKv, nCtx] f32 each, persistent across graphs. */
  k: Tensor;
  v: Tensor;
  /** Tokens already in the cache; this chunk is written after them. */
  nPast: number;
}

export interface AttnInputs {
  /** I32 positions, T entries (×4 for multi-section RoPE). */
  pos: Tensor;
  /** f32 [nPast + T, T]: 0 where key j is visible to query i, -inf elsewhere. */
  mask: Tensor;
  cache?: KvCache;
}

/**
 * q [hd, nHead, T], k and v [hd, nHeadKv, T] (already normed and rotated) → [hd * nHead, T].
 * Query head h reads KV head h / (nHead / nHeadKv), as ggml's mul_mat broadcast and HF's repeat_kv.
 */
export function attention(b: BuildCtx, q: Tensor, k: Tensor, v: Tensor, io: AttnInputs, scale: number): Tensor {
  const g = b.g;
  const [hd, nHead, T] = q.ne;
  let kAll = k;
  let vAll = v;
  const c = io.cache;
  if (c) {
    const nCtx = c.k.ne[2];
    if (c.nPast + T > nCtx) throw new RangeError(`KV cache holds ${nCtx} tokens; ${c.nPast} + ${T} do not fit`);
    const row = c.k.nb[2];
    // the cache's past part is read (concat) and the new part written (cpy): disjoint regions
    b.effects.push(g.cpy(k, g.view(c.k, [hd, k.ne[1], T], [c.k.nb[1], row], c.nPast * row)));
    b.effects.push(g.cpy(v, g.view(c.v, [hd, v.ne[1], T], [c.v.nb[1], row], c.nPast * row)));
    if (c.nPast > 0) {
      kAll = g.concat(g.view(c.k, [hd, k.ne[1], c.nPast], [c.k.nb[1], row], 0), k, 2);
      vAll = g.concat(g.view(c.v, [hd, v.ne[1], c.nPast], [c.v.nb[1], row], 0), v, 2);
    }
  }
  const qp = g.permute(q, 0, 2, 1, 3); // [hd, T, nHead]
  const kp = g.permute(kAll, 0, 2, 1, 3); // [hd, N, nKv]
  const kq = g.mulMat(kp, qp); // [N, T, nHead]
  const probs = g.softMax(kq, io.mask, scale);
  const vt = g.cont(g.permute(vAll, 1, 2, 0, 3)); // [N, hd, nKv]
  const kqv = g.mulMat(vt, probs); // [hd, T, nHead]
  const out = g.cont(g.permute(kqv, 0, 2, 1, 3)); // [hd, nHead, T]
  return g.reshape(out, [hd * nHead, T]);
}

/** The causal mask for T queries at positions nPast.. over nPast + T keys. */
export function causalMask(nPast: number, T: number): Float32Array {
  const n = nPast + T;
  const m = new Float32Array(n * T);
  for (let i = 0; i < T; i++) m.fill(-Infinity, i * n + nPast + i + 1, (i + 1) * n);
  return m;
}
