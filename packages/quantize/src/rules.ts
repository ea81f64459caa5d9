// Which ggml type each tensor gets under a preset: llama-quant.cpp's tensor_allows_quantization,
// tensor_get_category, llama_tensor_get_type(_impl) and tensor_type_fallback, transcribed for the
// presets in presets.ts (branches that only fire for IQ1/IQ2/IQ3/TQ/MXFP4 ftypes or Falcon are left out).
// Counters (i_attention_wv, i_ffn_down, …) advance in llama-quantize's tensor order, so callers pass
// the tensors in that order (see llamaTensorOrder).
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import { PRESETS, type PresetName } from './presets.js';

export type TensorCategory =
  | 'OUTPUT' | 'TOKEN_EMBD' | 'ATTENTION_QKV' | 'ATTENTION_KV_B' | 'ATTENTION_V' | 'ATTENTION_K' | 'ATTENTION_Q'
  | 'ATTENTION_OUTPUT' | 'FFN_UP' | 'FFN_GATE' | 'FFN_DOWN' | 'OTHER';

/** Substring tests, first match wins (tensor_get_category). */
export function tensorCategory(name: string): TensorCategory {
  if (name === 'output.weight') return 'OUTPUT';
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return 'TOKEN_EMBD';
  const rules: [string, TensorCategory][] = [
    ['attn_qkv.weight', 'ATTENTION_QKV'], ['attn_kv_b.weight', 'ATTENTION_KV_B'], ['attn_v.weight', 'ATTENTION_V'],
    ['attn_k.weight', 'ATTENTION_K'], ['attn_q.weight', 'ATTENTION_Q'], ['attn_output.weight', 'ATTENTION_OUTPUT'],
    ['ffn_up', 'FFN_UP'], ['ffn_gate', 'FFN_GATE'], ['ffn_down', 'FFN_DOWN'],
  ];
  for (const [needle, cat] of rules) if (name.includes(needle)) return cat;
  return 'OTHER';
}

/** V-like tensors share one counter: qwen35's GDN input projection is named attn_qkv and counts as one. */
export const isAttnVLike = (c: TensorCategory): boolean => c === 'ATTENTION_V' || c === 'ATTENTION_QKV' || c === 'ATTENTION_KV_B';

/** ggml_n_dims: trailing dimensions of size 1 do not count. */
export function nDims(ne: readonly number[]): number {
  for (let i = ne.length - 1; i >= 1; i--) if (ne[i]! > 1) return i + 1;
  return 1;
}

const NEVER_QUANTIZED_SUBSTRINGS = [
  '_norm.weight', 'ffn_gate_inp.weight', 'ffn_gate_tid2eid.weight', 'altup', 'laurel', 'per_layer_model_proj',
  'ssm_conv1d', 'shortconv.conv.weight', 'indexer.k_proj.weight', 'indexer.q_proj.weight',
  'time_mix_first.weight', 'time_mix_w0.weight', 'time_mix_w1.weight', 'time_mix_w2.weight', 'time_mix_v0.weight',
  'time_mix_v1.weight', 'time_mix_v2.weight', 'time_mix_a0.weight', 'time_mix_a1.weight', 'time_mix_a2.weight',
  'time_mix_g1.weight', 'time_mix_g2.weight', 'time_mix_decay_w1.weight', 'time_mix_decay_w2.weight',
  'time_mix_lerp_fused.weight', 'attn_rel_b.weight', '.position_embd', 'sam.pos_embd', 'sam.neck.', 'sam.net_',
  '.rel_pos', '.patch_embd', '.patch_merger', 'a.rvq.codebook', 'mm.a.code_embd',
] as const;

/** tensor_allows_quantization: ≥ 2-D, name ends in "weight", not a norm/conv/… and not output.weight when it is left alone. */
export function allowsQuantization(name: string, ne: readonly number[], quantizeOutputTensor = true): boolean {
  if (nDims(ne) < 2) return false;
  if (!name.endsWith('weight')) return false;
  if (!quantizeOutputTensor && name === 'output.weight') return false;
  if (name === 'position_embd.weight' || name === 'token_types.weight') return false;
  return !NEVER_QUANTIZED_SUBSTRINGS.some((s) => name.includes(s));
}

/** use_more_bits: the first and last eighth of the layers, and every third layer between. */
export function useMoreBits(i: number, n: number): boolean {
  const n8 = Math.trunc(n / 8);
  return i < n8 || i >= Math.trunc((7 * n) / 8) || (i - n8) % 3 === 2;
}

/** tensor_type_fallback: a type for rows whose length is not a multiple of the chosen type's block. */
export function fallbackType(ne0: number, target: GgmlTypeName): { type: GgmlTypeName; fellBack: boolean } {
  const qk = GGML_TYPES[target].blockSize;
  if (ne0 % qk === 0) return { type: target, fellBack: false };
  const map: Partial<Record<GgmlTypeName, GgmlTypeName>> = {
    IQ1_S: 'IQ4_NL', IQ1_M: 'IQ4_NL', IQ2_XXS: 'IQ4_NL', IQ2_XS: 'IQ4_NL', IQ2_S: 'IQ4_NL', IQ3_XXS: 'IQ4_NL', IQ3_S: 'IQ4_NL', IQ4_XS: 'IQ4_NL',
    Q2_0: 'Q4_0', Q2_K: 'Q4_0', Q3_K: 'Q4_0', TQ1_0: 'Q4_0', TQ2_0: 'Q4_0', Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0',
  };
  let type = map[target];
  if (type === undefined) {
    if (qk > 32) throw new Error(`no tensor type fallback is defined for type ${target}`);
    type = target; // already a 32-block type: the check below turns it into F16
  }
  if (ne0 % GGML_TYPES[type].blockSize !== 0) type = 'F16';
  return { type, fellBack: true };
}

/** tensor_requires_imatrix: very low-bit types (and Q2_K inside a Q2_K_S file) need importance weights. */
export function requiresImatrix(name: string, type: GgmlTypeName, ftype: number): boolean {
  if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight' || name === 'output.weight') return false;
  if (['IQ3_XXS', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ1_M', 'IQ1_S'].includes(type)) return true;
  return type === 'Q2_K' && ftype === 21; // LLAMA_FTYPE_MOSTLY_Q2_K_S
}

/** llama-quantize's tensor order (weight_name_comparer): by "blk.N." index (−1 for none), then by name. */
export function llamaTensorOrder<T extends { name: string }>(tensors: readonly T[]): T[] {
  const layer = (n: string): number => {
    const m = /^blk\.(-?\d+)\./.exec(n);
    return m ? Number(m[1]) : -1;
  };
  return [...tensors].sort((a, b) => {
    const la = layer(a.name), lb = layer(b.name);
    if (la !== lb) return la - lb;
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
}

export interface TypeOverride {
  /** Matched with regex search anywhere in the name, as std::regex_search. */
  pattern: RegExp;
  type: GgmlTypeName;
}

export interface RuleOptions {
  preset: PresetName;
  /** <arch>.block_count: n_ffn_down (= n_ffn_gate = n_ffn_up) in llama-quant.cpp. */
  blockCount: number;
  /** head_count / head_count_kv of layer 0 (hparams.n_gqa()). */
  nGqa: number;
  nExpert?: number;
  hasImatrix?: boolean;
  /** --pure: the default type everywhere (overrides and fallbacks still apply). */
  pure?: boolean;
  /** --leave-output-tensor */
  leaveOutputTensor?: boolean;
  overrides?: readonly TypeOverride[];
  outputTensorType?: GgmlTypeName;
  tokenEmbeddingType?: GgmlTypeName;
}

export interface TensorChoice {
  name: string;
  category: TensorCategory;
  allowsQuantization: boolean;
  /** The type to write (the input type when not quantizable). */
  type: GgmlTypeName;
  fellBack: boolean;
  manual: boolean;
  requiresImatrix: boolean;
}

/** Types for every tensor, in llama-quantize order; nFallback as its closing warning counts them. */
export function chooseTensorTypes(
  tensors: readonly { name: string; ne: readonly number[]; type: GgmlTypeName }[],
  opts: RuleOptions,
): { choices: TensorChoice[]; nFallback: number } {
  const { ftype, defaultType } = PRESETS[opts.preset];
  const preset = opts.preset;
  const nExpert = Math.max(1, opts.nExpert ?? 0);
  const ordered = llamaTensorOrder(tensors);
  const cats = ordered.map((t) => tensorCategory(t.name));
  const hasTiedEmbeddings = !cats.includes('OUTPUT');
  const nAttentionWv = cats.filter(isAttnVLike).length;
  const nFfn = opts.blockCount;
  let iAttentionWv = 0;
  let iFfnDown = 0;
  let nFallback = 0;

  // llama_tensor_get_type_impl for the presets we offer
  const impl = (newType: GgmlTypeName, ne0: number, category: TensorCategory): GgmlTypeName => {
    if (category === 'OUTPUT' || (hasTiedEmbeddings && category === 'TOKEN_EMBD')) {
      if (opts.outputTensorType) return opts.outputTensorType;
      if (ne0 % GGML_TYPES[newType].blockSize !== 0) return 'Q8_0';
      return newType !== 'Q8_0' ? 'Q6_K' : newType;
    }
    if (category === 'TOKEN_EMBD') return opts.tokenEmbeddingType ?? newType;
    if (isAttnVLike(category)) {
      if (preset === 'Q2_K') newType = opts.nGqa >= 4 ? 'Q4_K' : 'Q3_K';
      else if (preset === 'Q3_K_M') newType = iAttentionWv < 2 ? 'Q5_K' : 'Q4_K';
      else if (preset === 'Q3_K_L') newType = 'Q5_K';
      else if ((preset === 'IQ4_NL' || preset === 'IQ4_XS') && opts.nGqa >= 4) newType = 'Q5_K';
      else if ((preset === 'Q4_K_M' || preset === 'Q5_K_M') && useMoreBits(iAttentionWv, nAttentionWv)) newType = 'Q6_K';
      else if (preset === 'Q4_K_S' && iAttentionWv < 4) newType = 'Q5_K';
      if (nExpert === 8) newType = 'Q8_0';
      iAttentionWv++;
      return newType;
    }
    if (category === 'ATTENTION_K') return nExpert === 8 ? 'Q8_0' : newType;
    if (category === 'FFN_DOWN') {
      const i = iFfnDown, n = nFfn;
      if (preset === 'Q2_K') newType = 'Q3_K';
      else if (preset === 'Q3_K_M') newType = i < Math.trunc(n / 16) ? 'Q5_K' : 'Q4_K';
      else if (preset === 'Q3_K_L') newType = 'Q5_K';
      else if (preset === 'Q4_K_M') { if (useMoreBits(i, n)) newType = 'Q6_K'; }
      else if (i < Math.trunc(n / 8) && (preset === 'IQ4_NL' || preset === 'IQ4_XS') && !opts.hasImatrix) newType = 'Q5_K';
      else if (preset === 'Q5_K_M' && useMoreBits(i, n)) newType = 'Q6_K';
      else if (preset === 'Q4_K_S' && i < Math.trunc(n / 8)) newType = 'Q5_K';
      else if ((preset === 'Q4_0' || preset === 'Q5_0') && opts.hasImatrix && i < Math.trunc(n / 8)) newType = preset === 'Q4_0' ? 'Q4_1' : 'Q5_1';
      iFfnDown++;
      return newType;
    }
    if (category === 'ATTENTION_OUTPUT') {
      if (nExpert === 8) {
        if (['Q2_K', 'Q3_K_S', 'Q3_K_M', 'IQ4_NL', 'Q4_K_S', 'Q4_K_M', 'IQ4_XS'].includes(preset)) newType = 'Q5_K';
      } else if (preset === 'Q2_K') newType = 'Q3_K';
      else if (preset === 'Q3_K_M') newType = 'Q4_K';
      else if (preset === 'Q3_K_L') newType = 'Q5_K';
      return newType;
    }
    // ATTENTION_QKV's own rule is unreachable (V-like above); FFN_GATE/UP and ATTENTION_Q change only IQ3 ftypes.
    return newType;
  };

  const choices = ordered.map((t, k): TensorChoice => {
    const category = cats[k]!;
    const allows = allowsQuantization(t.name, t.ne, !opts.leaveOutputTensor);
    let type: GgmlTypeName = t.type;
    let fellBack = false;
    let manual = false;
    if (allows) {
      if (opts.tokenEmbeddingType && category === 'TOKEN_EMBD') type = opts.tokenEmbeddingType;
      else if (opts.outputTensorType && category === 'OUTPUT') type = opts.outputTensorType;
      else {
        type = defaultType;
        for (const o of opts.overrides ?? []) {
          if (o.pattern.test(t.name)) { type = o.type; manual = true; break; }
        }
        if (!manual && !opts.pure) type = impl(type, t.ne[0]!, category);
        const fb = fallbackType(t.ne[0]!, type);
        type = fb.type;
        fellBack = fb.fellBack;
        if (fellBack) nFallback++;
      }
    }
    return { name: t.name, category, allowsQuantization: allows, type, fellBack, manual, requiresImatrix: requiresImatrix(t.name, type, ftype) };
  });
  return { choices, nFallback };
}
