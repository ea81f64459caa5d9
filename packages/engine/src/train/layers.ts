// Differentiable layer builders for training: the same math as model/qwen3.ts and model/qwen35.ts,
// with the ops that have no ggml backward (SIGMOID, L2_NORM, SSM_CONV, CONCAT, GATED_DELTA_NET)
// replaced by ./ops.ts and ./gdn-chunked.ts, no caches, and packed rows (several documents in one
// row: block-diagonal attention mask, the conv window and the DeltaNet state reset per document).
import { ROPE_TYPE } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import { linear, rmsNormW, swigluFfn, type BuildCtx, type LayerWeights } from '../model/build.js';
import { qwen3Block } from '../model/qwen3.js';
import { convChannels, type ModelParams, type Qwen35Params, type Qwen3Params } from '../model/hparams.js';
import { gatedDeltaChunked, gdnChunkSize } from './gdn-chunked.js';
import { causalConvP, l2normP, permuteC, sigmoidP, type GraphConsts } from './ops.js';

/** HF's DeltaNet q/k l2norm epsilon (inside the root; transformers' l2norm default). */
export const L2NORM_EPS = 1e-6;

/** Per-row inputs every layer of a training graph shares. */
export interface TrainInputs {
  /** I32 positions: T entries (×4 for qwen35's multi-section RoPE). */
  pos: Tensor;
  /** f32 [T, T]: 0 where key j is visible to query i (same document, j ≤ i), −inf elsewhere. */
  mask: Tensor;
  /** Document spans [start, end) of the row, in order, covering 0..T. */
  docs: readonly (readonly [number, number])[];
  /** Per conv tap i: [1, T] 0/1, 1 where tap i stays inside the token's document (absent: one document). */
  convKeep?: readonly Tensor[];
  consts: GraphConsts;
}

/** Softmax attention, grouped-query: q [hd, nHead, T], k/v [hd, nKv, T] → [hd·nHead, T]. */
export function trainAttention(b: BuildCtx, q: Tensor, k: Tensor, v: Tensor, mask: Tensor, scale: number): Tensor {
  const g = b.g;
  const [hd, nHead, T] = q.ne;
  const qp = permuteC(g, q, 0, 2, 1, 3); // [hd, T, nHead]
  const kp = permuteC(g, k, 0, 2, 1, 3); // [hd, T, nKv]; query head h reads KV head h / (nHead / nKv)
  const probs = g.softMax(g.mulMat(kp, qp), mask, scale); // [T keys, T queries, nHead]
  const vt = permuteC(g, v, 1, 2, 0, 3); // [T, hd, nKv]
  const kqv = g.mulMat(vt, probs); // [hd, T, nHead]
  return g.reshape(permuteC(g, kqv, 0, 2, 1, 3), [hd * nHead, T]);
}

export function trainQwen3Layer(b: BuildCtx, p: Qwen3Params, lw: LayerWeights, x: Tensor, io: TrainInputs): Tensor {
  return qwen3Block(b, p, lw, x, io.pos, (q, k, v, scale) => trainAttention(b, q, k, v, io.mask, scale));
}

/** Gated attention: q_proj packs [query | gate] per head; output gated by sigmoid(gate). */
export function trainQwen35Attention(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, a: Tensor, io: TrainInputs): Tensor {
  const g = b.g;
  const T = a.ne[1];
  const hd = p.headDim;
  const qg = linear(b, lw, 'attn_q.weight', a); // [2 hd nHead, T]
  const half = (off: number) => g.cont(g.view(qg, [hd, p.nHead, T], [2 * hd * 4, 2 * hd * p.nHead * 4], off));
  let q = half(0);
  const gate = g.reshape(half(hd * 4), [hd * p.nHead, T]);
  let k = g.reshape(linear(b, lw, 'attn_k.weight', a), [hd, p.nHeadKv, T]);
  const v = g.reshape(linear(b, lw, 'attn_v.weight', a), [hd, p.nHeadKv, T]);
  const rope = { nDims: p.nRot, mode: ROPE_TYPE.IMROPE, freqBase: p.ropeBase, nCtxOrig: p.nCtxTrain, sections: p.ropeSections };
  q = g.rope(rmsNormW(b, q, lw.get('attn_q_norm.weight'), p.eps), io.pos, rope);
  k = g.rope(rmsNormW(b, k, lw.get('attn_k_norm.weight'), p.eps), io.pos, rope);
  const att = trainAttention(b, q, k, v, io.mask, 1 / Math.sqrt(hd));
  return linear(b, lw, 'attn_output.weight', g.mul(att, sigmoidP(g, gate)));
}

/** Gated DeltaNet mixer, each document from a zero conv window and a zero state. */
export function trainQwen35DeltaNet(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, a: Tensor, io: TrainInputs): Tensor {
  const g = b.g;
  const cs = io.consts;
  const T = a.ne[1];
  const C = convChannels(p);
  const dk = p.ssmState, Hk = p.ssmGroups, Hv = p.ssmHeads;
  const qkv = linear(b, lw, 'attn_qkv.weight', a); // [C, T]
  const z = linear(b, lw, 'attn_gate.weight', a); // [Hv dv, T]
  const beta = g.reshape(sigmoidP(g, linear(b, lw, 'ssm_beta.weight', a)), [1, Hv, T]);
  const alpha = linear(b, lw, 'ssm_alpha.weight', a); // [Hv, T]
  const gate = g.reshape(g.mul(g.softplus(g.add(alpha, lw.get('ssm_dt.bias'))), lw.get('ssm_a')), [1, Hv, T]);

  const conv = g.silu(causalConvP(g, cs, qkv, lw.get('ssm_conv1d.weight'), io.convKeep)); // [C, T]
  const part = (ch0: number, heads: number) => g.cont(g.view(conv, [dk, heads, T], [dk * 4, C * 4], ch0 * 4));
  const q = l2normP(g, part(0, Hk), L2NORM_EPS);
  const k = l2normP(g, part(Hk * dk, Hk), L2NORM_EPS);
  const v = part(2 * Hk * dk, Hv);

  let o: Tensor;
  if (io.docs.length === 1) {
    o = gatedDeltaChunked(g, cs, q, k, v, gate, beta, gdnChunkSize(T));
  } else {
    // each document is its own sequence; outputs are written into place with SET (CONCAT has no backward)
    o = cs.zeros([dk, Hv, T]);
    for (const [s, e] of io.docs) {
      const n = e - s;
      const seg = (t: Tensor) => g.view(t, [t.ne[0], t.ne[1], n], [t.nb[1], t.nb[2]], s * t.nb[2]);
      const od = gatedDeltaChunked(g, cs, g.cont(seg(q)), g.cont(seg(k)), g.cont(seg(v)), g.cont(seg(gate)), g.cont(seg(beta)), gdnChunkSize(n));
      o = g.set(o, od, [o.nb[1], o.nb[2], o.nb[3]], s * o.nb[2]);
    }
  }
  const normed = g.mul(rmsNormW(b, o, lw.get('ssm_norm.weight'), p.eps), g.silu(g.reshape(z, [dk, Hv, T])));
  return linear(b, lw, 'ssm_out.weight', g.reshape(normed, [p.ssmInner, T]));
}

export function trainQwen35Layer(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, x: Tensor, io: TrainInputs): Tensor {
  const g = b.g;
  const a = rmsNormW(b, x, lw.get('attn_norm.weight'), p.eps);
  const mixed = p.recurrent[lw.il] ? trainQwen35DeltaNet(b, p, lw, a, io) : trainQwen35Attention(b, p, lw, a, io);
  const h = g.add(x, mixed);
  const f = rmsNormW(b, h, lw.get('post_attention_norm.weight'), p.eps);
  return g.add(h, swigluFfn(b, lw, f));
}

export function trainLayer(b: BuildCtx, p: ModelParams, lw: LayerWeights, x: Tensor, io: TrainInputs): Tensor {
  return p.arch === 'qwen3' ? trainQwen3Layer(b, p, lw, x, io) : trainQwen35Layer(b, p, lw, x, io);
}
