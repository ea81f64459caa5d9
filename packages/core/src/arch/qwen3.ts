// Qwen3 dense (HF model_type "qwen3", Qwen3ForCausalLM / Qwen3Model) → llama.cpp arch "qwen3".
// A plain decoder plus per-head RMSNorm on q and k; no value transforms (its RMSNorm multiplies by w).
import { allAttentionLayers, baseRename, DECODER_BLOCK_TENSORS, DECODER_GLOBAL_TENSORS, textModelKeys } from './common.js';
import type { ArchDefinition } from './types.js';

export const qwen3: ArchDefinition = {
  modelType: 'qwen3',
  hfArchitectures: ['Qwen3ForCausalLM', 'Qwen3Model'],
  ggufArch: 'qwen3',
  // No rope.dimension_count: the loader defaults it to key_length, the full head.
  keys: textModelKeys(),
  globalTensors: DECODER_GLOBAL_TENSORS,
  blockTensors: [
    ...DECODER_BLOCK_TENSORS,
    // Per-head q/k RMSNorm, applied before RoPE.
    { hf: 'self_attn.q_norm.weight', gguf: 'attn_q_norm.weight', shape: (h) => [h.headDim()] },
    { hf: 'self_attn.k_norm.weight', gguf: 'attn_k_norm.weight', shape: (h) => [h.headDim()] },
  ],
  layerKinds: allAttentionLayers,
  rename: (name) => baseRename(name),
};
