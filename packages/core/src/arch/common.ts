// Pieces every decoder-only architecture shares: the generic hparam keys llama.cpp's TextModel
// writes, the multimodal filter, the `language_model.` unwrapping, and the plain decoder-block tensors.
import type { HParams } from './hparams.js';
import type { KeySpec, RenameResult, TensorRule } from './types.js';

/** Vision/audio towers are not part of a text GGUF (llama.cpp's TextModel filter, same prefixes/substrings). */
export const MULTIMODAL_PREFIXES = [
  'mlp', 'vit.', 'vpm.', 'siglip2.', 'conformer.', 'merger.', 'resampler.', 'sound_encoder.',
  'sound_projection.', 'speech_embeddings.',
] as const;
export const MULTIMODAL_SUBSTRINGS = [
  'visual.', 'vision.', 'audio.', 'talker.', 'vision_', 'audio_', 'token2wav.', 'code2wav.', 'projector.',
  'pre_mm_projector_norm', 'image_newline', 'view_seperator', 'patch_embed', 'patch_embedding',
  'patch_merger.', 'patch_merge_mlp.', 'model.connector.',
] as const;

export const UNUSED_SUFFIXES = ['.attention.masked_bias', '.attention.bias', '.rotary_emb.inv_freq'] as const;

export function isMultimodalTensor(name: string): boolean {
  return MULTIMODAL_PREFIXES.some((p) => name.startsWith(p)) || MULTIMODAL_SUBSTRINGS.some((s) => name.includes(s));
}

/**
 * The renaming every text architecture starts with: drop vision tensors, unwrap
 * `model.language_model.` (multimodal wrappers), and prefix bare `*Model` checkpoints with `model.`.
 */
export function baseRename(name: string): RenameResult {
  if (isMultimodalTensor(name)) return { skip: 'vision' };
  // Buffers llama.cpp's converter skips by suffix (recomputed at load).
  if (UNUSED_SUFFIXES.some((s) => name.endsWith(s))) return { skip: 'unused' };
  let n = name.replace('language_model.', '');
  if (!n.startsWith('model.') && !n.startsWith('lm_head.') && !n.startsWith('mtp.')) n = `model.${n}`;
  return { name: n };
}

/** Keys of llama.cpp's TextModel.set_gguf_parameters, in its order, for a dense decoder. */
export function textModelKeys(opts: { blockCount?: KeySpec['value']; beforeFreqBase?: readonly KeySpec[] } = {}): KeySpec[] {
  return [
    { key: 'block_count', type: 'UINT32', value: opts.blockCount ?? ((h) => h.int('num_hidden_layers')) },
    { key: 'context_length', type: 'UINT32', value: (h) => h.int('max_position_embeddings') },
    { key: 'embedding_length', type: 'UINT32', value: (h) => h.int('hidden_size') },
    { key: 'feed_forward_length', type: 'UINT32', value: (h) => h.int('intermediate_size') },
    { key: 'attention.head_count', type: 'UINT32', value: (h) => h.int('num_attention_heads') },
    { key: 'attention.head_count_kv', type: 'UINT32', value: (h) => h.int('num_key_value_heads', h.int('num_attention_heads')) },
    { key: 'attention.causal', type: 'BOOL', value: (h) => (h.get('is_causal') === false ? false : undefined) },
    ...ropeScalingKeys(),
    ...(opts.beforeFreqBase ?? []),
    { key: 'rope.freq_base', type: 'FLOAT32', value: (h) => optionalNumber(h.rope().rope_theta) },
    { key: 'attention.layer_norm_rms_epsilon', type: 'FLOAT32', value: (h) => h.num('rms_norm_eps') },
    { key: 'attention.key_length', type: 'UINT32', value: (h) => (h.has('head_dim') ? h.int('head_dim') : undefined) },
    { key: 'attention.value_length', type: 'UINT32', value: (h) => (h.has('head_dim') ? h.int('head_dim') : undefined) },
  ];
}

/** Written only for linear and yarn RoPE; 'default' (and llama3, handled by a tensor) write nothing. */
function ropeScalingKeys(): KeySpec[] {
  const kind = (h: HParams) => {
    const r = h.rope();
    return r.factor === undefined || r.factor === null ? undefined : (r.rope_type as string | undefined);
  };
  const yarn = (h: HParams, field: string) => (kind(h) === 'yarn' ? optionalNumber(h.rope()[field]) : undefined);
  return [
    { key: 'rope.scaling.type', type: 'STRING', value: (h) => { const k = kind(h); return k === 'linear' || k === 'yarn' ? k : undefined; } },
    { key: 'rope.scaling.factor', type: 'FLOAT32', value: (h) => { const k = kind(h); return k === 'linear' || k === 'yarn' ? optionalNumber(h.rope().factor) : undefined; } },
    { key: 'rope.scaling.original_context_length', type: 'UINT32', value: (h) => yarn(h, 'original_max_position_embeddings') },
    { key: 'rope.scaling.yarn_ext_factor', type: 'FLOAT32', value: (h) => yarn(h, 'extrapolation_factor') },
    { key: 'rope.scaling.yarn_attn_factor', type: 'FLOAT32', value: (h) => yarn(h, 'attention_factor') ?? yarn(h, 'attn_factor') },
    { key: 'rope.scaling.yarn_beta_fast', type: 'FLOAT32', value: (h) => yarn(h, 'beta_fast') },
    { key: 'rope.scaling.yarn_beta_slow', type: 'FLOAT32', value: (h) => yarn(h, 'beta_slow') },
  ];
}

export function optionalNumber(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

// Shape helpers for tables: [out, in] of nn.Linear weights.
export const qDim = (h: HParams) => h.int('num_attention_heads') * h.headDim();
export const kvDim = (h: HParams) => h.int('num_key_value_heads', h.int('num_attention_heads')) * h.headDim();
const tied = (h: HParams) => h.get('tie_word_embeddings') === true;

/** Embedding, final norm, LM head (absent when tied: the loader reuses token_embd). */
export const DECODER_GLOBAL_TENSORS: readonly TensorRule[] = [
  { hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', shape: (h) => [h.int('vocab_size'), h.int('hidden_size')] },
  { hf: 'model.norm.weight', gguf: 'output_norm.weight', shape: (h) => [h.int('hidden_size')] },
  { hf: 'lm_head.weight', gguf: 'output.weight', shape: (h) => [h.int('vocab_size'), h.int('hidden_size')], optional: tied },
];

/** Llama-style block: pre-norms, q/k/v/o projections, SwiGLU MLP. */
export const DECODER_BLOCK_TENSORS: readonly TensorRule[] = [
  { hf: 'input_layernorm.weight', gguf: 'attn_norm.weight', shape: (h) => [h.int('hidden_size')] },
  { hf: 'self_attn.q_proj.weight', gguf: 'attn_q.weight', shape: (h) => [qDim(h), h.int('hidden_size')] },
  { hf: 'self_attn.k_proj.weight', gguf: 'attn_k.weight', shape: (h) => [kvDim(h), h.int('hidden_size')] },
  { hf: 'self_attn.v_proj.weight', gguf: 'attn_v.weight', shape: (h) => [kvDim(h), h.int('hidden_size')] },
  { hf: 'self_attn.o_proj.weight', gguf: 'attn_output.weight', shape: (h) => [h.int('hidden_size'), qDim(h)] },
  { hf: 'post_attention_layernorm.weight', gguf: 'ffn_norm.weight', shape: (h) => [h.int('hidden_size')] },
  { hf: 'mlp.gate_proj.weight', gguf: 'ffn_gate.weight', shape: (h) => [h.int('intermediate_size'), h.int('hidden_size')] },
  { hf: 'mlp.up_proj.weight', gguf: 'ffn_up.weight', shape: (h) => [h.int('intermediate_size'), h.int('hidden_size')] },
  { hf: 'mlp.down_proj.weight', gguf: 'ffn_down.weight', shape: (h) => [h.int('hidden_size'), h.int('intermediate_size')] },
];

export function allAttentionLayers(h: HParams): 'attention'[] {
  return Array.from({ length: h.int('num_hidden_layers') }, () => 'attention' as const);
}
