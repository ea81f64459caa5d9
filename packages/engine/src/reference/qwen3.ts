// Reference forward of dense Qwen3 (`qwen3`, Qwen3ForCausalLM), transcribed from transformers'
// modeling_qwen3.py: pre-norm decoder, RMSNorms that multiply by w (not 1 + w), per-head q/k RMSNorm
// before RoPE, rotate_half RoPE over the whole head, causal GQA softmax, SwiGLU, lm_head (or tied embedding).
import { QtkError } from '@qtk/core';
import { addInPlace, causalAttention, matmul, rmsnorm, ropeInvFreq, ropeRotateHalf, swiglu } from './ops.js';
import { lmHead, rounding, type HfWeights, type ReferenceOptions, type ReferenceResult } from './weights.js';

export async function qwen3Forward(w: HfWeights, ids: number[], opts: ReferenceOptions = {}): Promise<ReferenceResult> {
  const c = w.config;
  const rs = (c.rope_scaling ?? null) as Record<string, unknown> | null;
  const rp = (c.rope_parameters ?? {}) as Record<string, any>;
  const ropeType = rs?.rope_type ?? rs?.type ?? rp.rope_type ?? 'default';
  if (ropeType !== 'default') {
    throw new QtkError(`config.json: rope_type ${JSON.stringify(ropeType)} is not supported by the qwen3 reference (only "default"). Use an unscaled checkpoint.`);
  }
  const H = c.hidden_size as number;
  const I = c.intermediate_size as number;
  const nh = c.num_attention_heads as number;
  const nkv = c.num_key_value_heads as number;
  const hd = (c.head_dim ?? H / nh) as number;
  const eps = (c.rms_norm_eps ?? 1e-6) as number;
  const theta = (rp.rope_theta ?? c.rope_theta ?? 10000) as number;
  const round = rounding(opts.roundMatmulInputs);
  const T = ids.length;

  const x = Float64Array.from(await w.rows('model.embed_tokens.weight', ids));
  const invFreq = ropeInvFreq(hd, theta);
  const angles = new Float64Array(hd / 2);
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = `model.layers.${i}`;
    const h = rmsnorm(x, H, await w.get(`${p}.input_layernorm.weight`, [H]), eps, false);
    const q = rmsnorm(matmul(h, T, await w.get(`${p}.self_attn.q_proj.weight`, [nh * hd, H]), nh * hd, H, round), hd, await w.get(`${p}.self_attn.q_norm.weight`, [hd]), eps, false);
    const k = rmsnorm(matmul(h, T, await w.get(`${p}.self_attn.k_proj.weight`, [nkv * hd, H]), nkv * hd, H, round), hd, await w.get(`${p}.self_attn.k_norm.weight`, [hd]), eps, false);
    const v = matmul(h, T, await w.get(`${p}.self_attn.v_proj.weight`, [nkv * hd, H]), nkv * hd, H, round);
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < hd / 2; j++) angles[j] = t * invFreq[j]!;
      for (let n = 0; n < nh; n++) ropeRotateHalf(q, (t * nh + n) * hd, hd, angles);
      for (let n = 0; n < nkv; n++) ropeRotateHalf(k, (t * nkv + n) * hd, hd, angles);
    }
    const att = causalAttention(q, k, v, T, nh, nkv, hd);
    addInPlace(x, matmul(att, T, await w.get(`${p}.self_attn.o_proj.weight`, [H, nh * hd]), H, nh * hd, round));
    const f = rmsnorm(x, H, await w.get(`${p}.post_attention_layernorm.weight`, [H]), eps, false);
    addInPlace(x, swiglu(f, T, await w.get(`${p}.mlp.gate_proj.weight`, [I, H]), await w.get(`${p}.mlp.up_proj.weight`, [I, H]), await w.get(`${p}.mlp.down_proj.weight`, [H, I]), H, I, round));
    opts.onLayer?.(i, x);
  }
  const hidden = rmsnorm(x, H, await w.get('model.norm.weight', [H]), eps, false);
  const head = w.has('lm_head.weight') || !c.tie_word_embeddings ? 'lm_head.weight' : 'model.embed_tokens.weight';
  if (opts.hiddenOnly) return { logits: new Float32Array(0), vocab: 0, hidden };
  const { logits, vocab } = await lmHead(w, head, hidden, T, H, round);
  return opts.returnHidden ? { logits, vocab, hidden } : { logits, vocab };
}
