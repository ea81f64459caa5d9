// Qwen3 dense (`qwen3`): pre-norm decoder, q/k RMSNorm per head, NeoX RoPE over the whole head,
// grouped-query attention, SwiGLU. Spec §7; llama.cpp src/models/qwen3.cpp.
import { ROPE_TYPE } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import { attention, type AttnInputs } from './attention.js';
import { linear, rmsNormW, swigluFfn, type BuildCtx, type LayerWeights } from './build.js';
import type { Qwen3Params } from './hparams.js';
import type { WeightSpec } from './weights.js';

export function qwen3WeightSpecs(p: Qwen3Params): WeightSpec[] {
  const { nEmbd: E, headDim: hd, nHead, nHeadKv, nFf, nVocab } = p;
  const specs: WeightSpec[] = [
    { name: 'token_embd.weight', ne: [E, nVocab] },
    { name: 'output_norm.weight', ne: [E] },
    { name: 'output.weight', ne: [E, nVocab], optional: true, matmul: true },
  ];
  for (let i = 0; i < p.nLayer; i++) {
    const b = `blk.${i}.`;
    specs.push(
      { name: `${b}attn_norm.weight`, ne: [E] },
      { name: `${b}attn_q.weight`, ne: [E, hd * nHead], matmul: true },
      { name: `${b}attn_k.weight`, ne: [E, hd * nHeadKv], matmul: true },
      { name: `${b}attn_v.weight`, ne: [E, hd * nHeadKv], matmul: true },
      { name: `${b}attn_output.weight`, ne: [hd * nHead, E], matmul: true },
      { name: `${b}attn_q_norm.weight`, ne: [hd] },
      { name: `${b}attn_k_norm.weight`, ne: [hd] },
      { name: `${b}ffn_norm.weight`, ne: [E] },
      { name: `${b}ffn_gate.weight`, ne: [E, nFf], matmul: true },
      { name: `${b}ffn_up.weight`, ne: [E, nFf], matmul: true },
      { name: `${b}ffn_down.weight`, ne: [nFf, E], matmul: true },
    );
  }
  return specs;
}

/** Attention over RoPE'd heads: q [hd, nHead, T], k/v [hd, nKv, T] → [hd·nHead, T]. */
export type Attend = (q: Tensor, k: Tensor, v: Tensor, scale: number) => Tensor;

/** One Qwen3 block, x [nEmbd, T] → [nEmbd, T], with the attention itself supplied (cached or training). */
export function qwen3Block(b: BuildCtx, p: Qwen3Params, lw: LayerWeights, x: Tensor, pos: Tensor, attend: Attend): Tensor {
  const g = b.g;
  const T = x.ne[1];
  const hd = p.headDim;
  const rope = { nDims: p.nRot, mode: ROPE_TYPE.NEOX, freqBase: p.ropeBase, nCtxOrig: p.nCtxTrain };
  const a = rmsNormW(b, x, lw.get('attn_norm.weight'), p.eps);
  let q = g.reshape(linear(b, lw, 'attn_q.weight', a), [hd, p.nHead, T]);
  let k = g.reshape(linear(b, lw, 'attn_k.weight', a), [hd, p.nHeadKv, T]);
  const v = g.reshape(linear(b, lw, 'attn_v.weight', a), [hd, p.nHeadKv, T]);
  q = g.rope(rmsNormW(b, q, lw.get('attn_q_norm.weight'), p.eps), pos, rope);
  k = g.rope(rmsNormW(b, k, lw.get('attn_k_norm.weight'), p.eps), pos, rope);
  const att = attend(q, k, v, 1 / Math.sqrt(hd));
  const h = g.add(x, linear(b, lw, 'attn_output.weight', att));
  const f = rmsNormW(b, h, lw.get('ffn_norm.weight'), p.eps);
  return g.add(h, swigluFfn(b, lw, f));
}

/** One Qwen3 block of the inference graph (KV cache through `io`). */
export function qwen3Layer(b: BuildCtx, p: Qwen3Params, lw: LayerWeights, x: Tensor, io: AttnInputs): Tensor {
  return qwen3Block(b, p, lw, x, io.pos, (q, k, v, scale) => attention(b, q, k, v, io, scale));
}
