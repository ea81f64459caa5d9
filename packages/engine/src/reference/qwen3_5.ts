// Reference forward of Qwen3.5/3.6 (`qwen3_5`, Qwen3_5ForConditionalGeneration / Qwen3_5ForCausalLM) text
// model, transcribed from transformers' modeling_qwen3_5.py: hybrid layers of Gated DeltaNet
// ("linear_attention") and gated full attention, zero-centred RMSNorms (x̂ · (1 + w)), SwiGLU, untied lm_head.
// Single sequence, no cache, positions 0..T-1. The MTP head and the vision tower are not run.
import { QtkError } from '@qtk/core';
import { addInPlace, causalAttention, l2normRows, matmul, rmsnorm, ropeInvFreq, ropeRotateHalf, sigmoid, silu, softplus, swiglu, type Rounding } from './ops.js';
import { lmHead, rounding, type HfWeights, type ReferenceOptions, type ReferenceResult } from './weights.js';

export interface Qwen35TextDims {
  H: number; I: number; L: number; V: number; eps: number;
  layerTypes: string[];
  /** Gated attention: query heads, KV heads, head size, rotary width, RoPE base. */
  nh: number; nkv: number; hd: number; rot: number; theta: number; mropeSection: number[];
  /** Gated DeltaNet: key heads, value heads, key/value head sizes, conv kernel. */
  hk: number; hv: number; dk: number; dv: number; K: number;
}

/** The text hyper-parameters, from `text_config` (multimodal checkpoint) or the root (text-only). */
export function qwen35Dims(config: Record<string, any>): Qwen35TextDims {
  const c = { ...config, ...(config.text_config ?? {}) } as Record<string, any>;
  const rp = (c.rope_parameters ?? c.rope_scaling ?? {}) as Record<string, any>;
  if ((rp.rope_type ?? 'default') !== 'default') {
    throw new QtkError(`config.json: rope_type ${JSON.stringify(rp.rope_type)} is not supported by the qwen3_5 reference (only "default"). Use an unscaled checkpoint.`);
  }
  const L = c.num_hidden_layers as number;
  const hd = (c.head_dim ?? c.hidden_size / c.num_attention_heads) as number;
  // Qwen3_5TextConfig defaults partial_rotary_factor to 0.25 when neither place has it.
  const partial = (rp.partial_rotary_factor ?? c.partial_rotary_factor ?? 0.25) as number;
  const interval = (c.full_attention_interval ?? 4) as number;
  return {
    H: c.hidden_size, I: c.intermediate_size, L, V: c.vocab_size, eps: c.rms_norm_eps ?? 1e-6,
    layerTypes: c.layer_types ?? Array.from({ length: L }, (_, i) => ((i + 1) % interval === 0 ? 'full_attention' : 'linear_attention')),
    nh: c.num_attention_heads, nkv: c.num_key_value_heads, hd, rot: Math.floor(hd * partial),
    theta: rp.rope_theta ?? c.rope_theta ?? 10000, mropeSection: rp.mrope_section ?? [11, 11, 10],
    hk: c.linear_num_key_heads, hv: c.linear_num_value_heads, dk: c.linear_key_head_dim, dv: c.linear_value_head_dim, K: c.linear_conv_kernel_dim,
  };
}

/**
 * Depthwise causal conv1d (HF `causal_conv1d_fn`: padding K-1, keep the first T outputs, no bias) then SiLU.
 * x [T, C], w [C, K] (the [C, 1, K] weight squeezed): y[t, c] = silu(Σ_k w[c, k] · x[t + k - (K-1), c]),
 * so tap K-1 multiplies the current token and taps before the sequence start read zeros.
 */
export function causalConv1dSilu(x: Float64Array, T: number, C: number, w: Float32Array, K: number): Float64Array {
  const y = new Float64Array(T * C);
  for (let t = 0; t < T; t++) {
    for (let c = 0; c < C; c++) {
      let s = 0;
      for (let k = 0; k < K; k++) {
        const src = t + k - (K - 1);
        if (src >= 0) s += w[c * K + k]! * x[src * C + c]!;
      }
      y[t * C + c] = silu(s);
    }
  }
  return y;
}

/**
 * The gated delta rule, token by token (HF `torch_recurrent_gated_delta_rule` with use_qk_l2norm_in_kernel):
 * q, k [T, hk·dk] are L2-normalised per head (eps 1e-6 inside the root) and q is scaled by dk^-0.5;
 * value head n reads key/query head floor(n / (hv / hk)) (repeat_interleave grouping). Per head the state
 * S [dk, dv] starts at zero and for each token: S ← e^g·S; δ = β·(v − Sᵀk); S ← S + k δᵀ; o = Sᵀq.
 * v [T, hv·dv], g and beta [T, hv] → o [T, hv·dv].
 */
export function gatedDeltaRule(
  q: Float64Array, k: Float64Array, v: Float64Array, g: Float64Array, beta: Float64Array,
  T: number, hk: number, hv: number, dk: number, dv: number,
): Float64Array {
  const r = hv / hk;
  if (!Number.isInteger(r)) throw new Error(`gatedDeltaRule: expected value heads (${hv}) to be a multiple of key heads (${hk})`);
  const qn = l2normRows(q, dk, 1e-6);
  const kn = l2normRows(k, dk, 1e-6);
  const scale = 1 / Math.sqrt(dk);
  const o = new Float64Array(T * hv * dv);
  const S = new Float64Array(dk * dv);
  const delta = new Float64Array(dv);
  for (let n = 0; n < hv; n++) {
    const m = Math.floor(n / r);
    S.fill(0);
    for (let t = 0; t < T; t++) {
      const decay = Math.exp(g[t * hv + n]!);
      for (let i = 0; i < S.length; i++) S[i] = S[i]! * decay;
      const ko = (t * hk + m) * dk;
      const vo = (t * hv + n) * dv;
      for (let j = 0; j < dv; j++) {
        let mem = 0;
        for (let i = 0; i < dk; i++) mem += S[i * dv + j]! * kn[ko + i]!;
        delta[j] = (v[vo + j]! - mem) * beta[t * hv + n]!;
      }
      for (let i = 0; i < dk; i++) for (let j = 0; j < dv; j++) S[i * dv + j] = S[i * dv + j]! + kn[ko + i]! * delta[j]!;
      for (let j = 0; j < dv; j++) {
        let s = 0;
        for (let i = 0; i < dk; i++) s += S[i * dv + j]! * qn[ko + i]! * scale;
        o[vo + j] = s;
      }
    }
  }
  return o;
}

/** Qwen3_5GatedDeltaNet.forward for one sequence: x [T, H] (already input-normed) → [T, H]. */
async function gatedDeltaNet(w: HfWeights, p: string, x: Float64Array, T: number, d: Qwen35TextDims, round?: Rounding): Promise<Float64Array> {
  const { H, hk, hv, dk, dv, K } = d;
  const keyDim = hk * dk;
  const valueDim = hv * dv;
  const C = 2 * keyDim + valueDim;
  const mixed = matmul(x, T, await w.get(`${p}.in_proj_qkv.weight`, [C, H]), C, H, round);
  const z = matmul(x, T, await w.get(`${p}.in_proj_z.weight`, [valueDim, H]), valueDim, H, round);
  const b = matmul(x, T, await w.get(`${p}.in_proj_b.weight`, [hv, H]), hv, H, round);
  const a = matmul(x, T, await w.get(`${p}.in_proj_a.weight`, [hv, H]), hv, H, round);
  const conv = causalConv1dSilu(mixed, T, C, await w.get(`${p}.conv1d.weight`, [C, 1, K]), K);

  // Split channels [q | k | v], each head-major.
  const q = new Float64Array(T * keyDim);
  const k = new Float64Array(T * keyDim);
  const v = new Float64Array(T * valueDim);
  for (let t = 0; t < T; t++) {
    q.set(conv.subarray(t * C, t * C + keyDim), t * keyDim);
    k.set(conv.subarray(t * C + keyDim, t * C + 2 * keyDim), t * keyDim);
    v.set(conv.subarray(t * C + 2 * keyDim, (t + 1) * C), t * valueDim);
  }
  // beta = sigmoid(b); g = −exp(A_log) · softplus(a + dt_bias), the per-token log-decay.
  const Alog = await w.get(`${p}.A_log`, [hv]);
  const dtBias = await w.get(`${p}.dt_bias`, [hv]);
  const beta = new Float64Array(T * hv);
  const g = new Float64Array(T * hv);
  for (let t = 0; t < T; t++) {
    for (let n = 0; n < hv; n++) {
      beta[t * hv + n] = sigmoid(b[t * hv + n]!);
      g[t * hv + n] = -Math.exp(Alog[n]!) * softplus(a[t * hv + n]! + dtBias[n]!);
    }
  }
  const o = gatedDeltaRule(q, k, v, g, beta, T, hk, hv, dk, dv);
  // Qwen3_5RMSNormGated: RMSNorm over each head's dv values times w (not 1 + w), then times silu(z).
  const normed = rmsnorm(o, dv, await w.get(`${p}.norm.weight`, [dv]), d.eps, false);
  for (let i = 0; i < normed.length; i++) normed[i] = normed[i]! * silu(z[i]!);
  return matmul(normed, T, await w.get(`${p}.out_proj.weight`, [H, valueDim]), H, valueDim, round);
}

/**
 * Qwen3_5Attention.forward: q_proj packs per head [query hd | gate hd]; zero-centred q/k RMSNorm over hd;
 * RoPE on the first `rot` dims (rotate_half); causal GQA softmax; output · sigmoid(gate); o_proj.
 */
async function gatedAttention(w: HfWeights, p: string, x: Float64Array, T: number, d: Qwen35TextDims, round?: Rounding): Promise<Float64Array> {
  const { H, nh, nkv, hd, rot } = d;
  const qg = matmul(x, T, await w.get(`${p}.q_proj.weight`, [2 * nh * hd, H]), 2 * nh * hd, H, round);
  let q: Float64Array = new Float64Array(T * nh * hd);
  const gate = new Float64Array(T * nh * hd);
  for (let t = 0; t < T; t++) {
    for (let h = 0; h < nh; h++) {
      const src = (t * nh + h) * 2 * hd;
      q.set(qg.subarray(src, src + hd), (t * nh + h) * hd);
      gate.set(qg.subarray(src + hd, src + 2 * hd), (t * nh + h) * hd);
    }
  }
  q = rmsnorm(q, hd, await w.get(`${p}.q_norm.weight`, [hd]), d.eps, true);
  const kRaw = matmul(x, T, await w.get(`${p}.k_proj.weight`, [nkv * hd, H]), nkv * hd, H, round);
  const k = rmsnorm(kRaw, hd, await w.get(`${p}.k_norm.weight`, [hd]), d.eps, true);
  const v = matmul(x, T, await w.get(`${p}.v_proj.weight`, [nkv * hd, H]), nkv * hd, H, round);

  // Interleaved MRoPE takes each frequency slot from the t, h or w position stream; for text all three
  // equal the token position, so the angle of slot j is simply pos · inv_freq[j].
  const invFreq = ropeInvFreq(rot, d.theta);
  const angles = new Float64Array(rot / 2);
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < rot / 2; j++) angles[j] = t * invFreq[j]!;
    for (let h = 0; h < nh; h++) ropeRotateHalf(q, (t * nh + h) * hd, rot, angles);
    for (let h = 0; h < nkv; h++) ropeRotateHalf(k, (t * nkv + h) * hd, rot, angles);
  }
  const att = causalAttention(q, k, v, T, nh, nkv, hd);
  for (let i = 0; i < att.length; i++) att[i] = att[i]! * sigmoid(gate[i]!);
  return matmul(att, T, await w.get(`${p}.o_proj.weight`, [H, nh * hd]), H, nh * hd, round);
}

export async function qwen35Forward(w: HfWeights, ids: number[], opts: ReferenceOptions = {}): Promise<ReferenceResult> {
  const d = qwen35Dims(w.config);
  const round = rounding(opts.roundMatmulInputs);
  const T = ids.length;
  const { H, I } = d;
  // Qwen3_5ForConditionalGeneration nests the text model under model.language_model; the CausalLM has it at model.
  const base = w.has('model.language_model.embed_tokens.weight') ? 'model.language_model' : 'model';
  const x = Float64Array.from(await w.rows(`${base}.embed_tokens.weight`, ids));
  for (let i = 0; i < d.L; i++) {
    const p = `${base}.layers.${i}`;
    const h = rmsnorm(x, H, await w.get(`${p}.input_layernorm.weight`, [H]), d.eps, true);
    if (d.layerTypes[i] === 'linear_attention') addInPlace(x, await gatedDeltaNet(w, `${p}.linear_attn`, h, T, d, round));
    else if (d.layerTypes[i] === 'full_attention') addInPlace(x, await gatedAttention(w, `${p}.self_attn`, h, T, d, round));
    else throw new QtkError(`config.json: layer_types[${i}] = ${JSON.stringify(d.layerTypes[i])}; expected "linear_attention" or "full_attention". Check the checkpoint's config.`);
    const f = rmsnorm(x, H, await w.get(`${p}.post_attention_layernorm.weight`, [H]), d.eps, true);
    addInPlace(x, swiglu(f, T, await w.get(`${p}.mlp.gate_proj.weight`, [I, H]), await w.get(`${p}.mlp.up_proj.weight`, [I, H]), await w.get(`${p}.mlp.down_proj.weight`, [H, I]), H, I, round));
    opts.onLayer?.(i, x);
  }
  const hidden = rmsnorm(x, H, await w.get(`${base}.norm.weight`, [H]), d.eps, true);
  // A tied checkpoint has no lm_head and reuses the embedding; an untied one without it is refused by the reader.
  const tied = Boolean(w.config.text_config?.tie_word_embeddings ?? w.config.tie_word_embeddings);
  const head = w.has('lm_head.weight') || !tied ? 'lm_head.weight' : `${base}.embed_tokens.weight`;
  if (opts.hiddenOnly) return { logits: new Float32Array(0), vocab: 0, hidden };
  const { logits, vocab } = await lmHead(w, head, hidden, T, H, round);
  return opts.returnHidden ? { logits, vocab, hidden } : { logits, vocab };
}
