// Qwen3.5/3.6 (`qwen35`): hybrid stack of Gated DeltaNet layers and gated full-attention layers
// (partial interleaved MRoPE, GQA, sigmoid output gate), each followed by a SwiGLU FFN.
// Spec §5; llama.cpp src/models/qwen35.cpp and delta-net-base.cpp.
import { ROPE_TYPE } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import { attention, type AttnInputs } from './attention.js';
import { linear, rmsNormW, swigluFfn, type BuildCtx, type LayerWeights } from './build.js';
import { convChannels, type Qwen35Params } from './hparams.js';
import type { WeightSpec } from './weights.js';

export function qwen35WeightSpecs(p: Qwen35Params): WeightSpec[] {
  const { nEmbd: E, headDim: hd, nHead, nHeadKv, nFf, nVocab } = p;
  const C = convChannels(p);
  const specs: WeightSpec[] = [
    { name: 'token_embd.weight', ne: [E, nVocab] },
    { name: 'output_norm.weight', ne: [E] },
    { name: 'output.weight', ne: [E, nVocab], optional: true, matmul: true },
  ];
  for (let i = 0; i < p.nLayer; i++) {
    const b = `blk.${i}.`;
    specs.push({ name: `${b}attn_norm.weight`, ne: [E] }, { name: `${b}post_attention_norm.weight`, ne: [E] });
    if (p.recurrent[i]) {
      specs.push(
        { name: `${b}attn_qkv.weight`, ne: [E, C], matmul: true },
        { name: `${b}attn_gate.weight`, ne: [E, p.ssmInner], matmul: true },
        { name: `${b}ssm_conv1d.weight`, ne: [p.convKernel, C] },
        { name: `${b}ssm_dt.bias`, ne: [p.ssmHeads] },
        { name: `${b}ssm_a`, ne: [p.ssmHeads] },
        { name: `${b}ssm_beta.weight`, ne: [E, p.ssmHeads], matmul: true },
        { name: `${b}ssm_alpha.weight`, ne: [E, p.ssmHeads], matmul: true },
        { name: `${b}ssm_norm.weight`, ne: [p.ssmState] },
        { name: `${b}ssm_out.weight`, ne: [p.ssmInner, E], matmul: true },
      );
    } else {
      specs.push(
        { name: `${b}attn_q.weight`, ne: [E, 2 * hd * nHead], matmul: true },
        { name: `${b}attn_k.weight`, ne: [E, hd * nHeadKv], matmul: true },
        { name: `${b}attn_v.weight`, ne: [E, hd * nHeadKv], matmul: true },
        { name: `${b}attn_output.weight`, ne: [hd * nHead, E], matmul: true },
        { name: `${b}attn_q_norm.weight`, ne: [hd] },
        { name: `${b}attn_k_norm.weight`, ne: [hd] },
      );
    }
    specs.push({ name: `${b}ffn_gate.weight`, ne: [E, nFf], matmul: true }, { name: `${b}ffn_up.weight`, ne: [E, nFf], matmul: true }, { name: `${b}ffn_down.weight`, ne: [nFf, E], matmul: true });
  }
  return specs;
}

/** Recurrent state of one GDN layer for one sequence (zeros at the start of a text). */
export interface GdnState {
  /** [convKernel - 1, channels, 1]: the last pre-convolution inputs. */
  conv: Tensor;
  /** [state, state, valueHeads, 1]: per head, stored transposed as ggml_gated_delta_net keeps it. */
  ssm: Tensor;
}

/** Gated attention mixer: a [nEmbd, T] (normed) → [nEmbd, T]. */
export function qwen35Attention(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, a: Tensor, io: AttnInputs): Tensor {
  const g = b.g;
  const T = a.ne[1];
  const hd = p.headDim;
  const qg = linear(b, lw, 'attn_q.weight', a); // [2 hd nHead, T]: per head, query then gate
  const es = qg.nb[0];
  let q = g.view(qg, [hd, p.nHead, T], [2 * hd * es, 2 * hd * p.nHead * es], 0);
  const gate = g.reshape(g.cont(g.view(qg, [hd, p.nHead, T], [2 * hd * es, 2 * hd * p.nHead * es], hd * es)), [hd * p.nHead, T]);
  let k = g.reshape(linear(b, lw, 'attn_k.weight', a), [hd, p.nHeadKv, T]);
  const v = g.reshape(linear(b, lw, 'attn_v.weight', a), [hd, p.nHeadKv, T]);
  const rope = { nDims: p.nRot, mode: ROPE_TYPE.IMROPE, freqBase: p.ropeBase, nCtxOrig: p.nCtxTrain, sections: p.ropeSections };
  q = g.rope(rmsNormW(b, q, lw.get('attn_q_norm.weight'), p.eps), io.pos, rope);
  k = g.rope(rmsNormW(b, k, lw.get('attn_k_norm.weight'), p.eps), io.pos, rope);
  const att = attention(b, q, k, v, io, 1 / Math.sqrt(hd));
  return linear(b, lw, 'attn_output.weight', g.mul(att, g.sigmoid(gate)));
}

/** Gated DeltaNet mixer: a [nEmbd, T] (normed) → [nEmbd, T]; reads and updates `st`. */
export function qwen35DeltaNet(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, a: Tensor, st: GdnState): Tensor {
  const g = b.g;
  const T = a.ne[1];
  const C = convChannels(p);
  const dk = p.ssmState, Hk = p.ssmGroups, Hv = p.ssmHeads, K = p.convKernel;
  const qkv = linear(b, lw, 'attn_qkv.weight', a); // [C, T]: q | k | v channels
  const z = linear(b, lw, 'attn_gate.weight', a); // [Hv dv, T]
  const beta = g.reshape(g.sigmoid(linear(b, lw, 'ssm_beta.weight', a)), [1, Hv, T, 1]);
  const alpha = linear(b, lw, 'ssm_alpha.weight', a); // [Hv, T]
  // g = softplus(alpha + dt_bias) * ssm_a, with ssm_a = -exp(A_log)
  const gate = g.reshape(g.mul(g.softplus(g.add(alpha, lw.get('ssm_dt.bias'))), lw.get('ssm_a')), [1, Hv, T, 1]);

  // causal depthwise conv over [previous K-1 inputs | this chunk], then keep the last K-1 inputs
  const sx = g.concat(st.conv, g.transpose(qkv), 0); // [K-1+T, C, 1]; concat reads the strided view
  b.effects.push(g.cpy(g.view(sx, [K - 1, C, 1], [sx.nb[1], sx.nb[2]], T * sx.nb[0]), st.conv));
  const conv = g.silu(g.ssmConv(sx, lw.get('ssm_conv1d.weight'))); // [C, T, 1]
  const es = conv.nb[0], row = conv.nb[1];
  let q = g.view(conv, [dk, Hk, T, 1], [dk * es, row, row * T], 0);
  let k = g.view(conv, [dk, Hk, T, 1], [dk * es, row, row * T], Hk * dk * es);
  const v = g.view(conv, [dk, Hv, T, 1], [dk * es, row, row * T], 2 * Hk * dk * es);
  q = g.l2Norm(q, p.eps);
  k = g.l2Norm(k, p.eps);

  // value head n pairs with key head n mod Hk inside the kernel (the converter tiled the V heads)
  const out = g.gatedDeltaNet(q, k, v, gate, beta, st.ssm); // [dv Hv, T + dv]
  const o = g.view(out, [dk, Hv, T], [dk * es, dk * Hv * es], 0);
  const newState = g.view(out, [dk * dk * Hv], [], dk * Hv * T * es);
  b.effects.push(g.cpy(newState, st.ssm));

  const zr = g.reshape(z, [dk, Hv, T]);
  const normed = g.mul(rmsNormW(b, o, lw.get('ssm_norm.weight'), p.eps), g.silu(zr));
  return linear(b, lw, 'ssm_out.weight', g.reshape(normed, [p.ssmInner, T]));
}

/** One Qwen3.5 block: x [nEmbd, T] → [nEmbd, T]. Pass `gdn` for recurrent layers, `attn` otherwise. */
export function qwen35Layer(b: BuildCtx, p: Qwen35Params, lw: LayerWeights, x: Tensor, io: { attn?: AttnInputs; gdn?: GdnState }): Tensor {
  const g = b.g;
  const a = rmsNormW(b, x, lw.get('attn_norm.weight'), p.eps);
  let mixed: Tensor;
  if (p.recurrent[lw.il]) {
    if (!io.gdn) throw new Error(`layer ${lw.il} is a Gated DeltaNet layer and needs its recurrent state`);
    mixed = qwen35DeltaNet(b, p, lw, a, io.gdn);
  } else {
    if (!io.attn) throw new Error(`layer ${lw.il} is an attention layer and needs positions and a mask`);
    mixed = qwen35Attention(b, p, lw, a, io.attn);
  }
  const h = g.add(x, mixed);
  const f = rmsNormW(b, h, lw.get('post_attention_norm.weight'), p.eps);
  return g.add(h, swigluFfn(b, lw, f));
}
