// Qwen2 / Qwen2.5 (HF model_type "qwen2", Qwen2ForCausalLM / Qwen2Model) → llama.cpp arch "qwen2".
// A plain decoder whose q/k/v projections carry biases; no value transforms.
import { allAttentionLayers, baseRename, DECODER_BLOCK_TENSORS, DECODER_GLOBAL_TENSORS, kvDim, qDim, textModelKeys } from './common.js';
import type { ArchDefinition } from './types.js';

export const qwen2: ArchDefinition = {
  modelType: 'qwen2',
  hfArchitectures: ['Qwen2ForCausalLM', 'Qwen2Model'],
  ggufArch: 'qwen2',
  keys: textModelKeys(),
  globalTensors: DECODER_GLOBAL_TENSORS,
  blockTensors: [
    ...DECODER_BLOCK_TENSORS,
    // Qwen2 attention always has q/k/v biases (and none on o_proj).
    { hf: 'self_attn.q_proj.bias', gguf: 'attn_q.bias', shape: (h) => [qDim(h)] },
    { hf: 'self_attn.k_proj.bias', gguf: 'attn_k.bias', shape: (h) => [kvDim(h)] },
    { hf: 'self_attn.v_proj.bias', gguf: 'attn_v.bias', shape: (h) => [kvDim(h)] },
  ],
  layerKinds: allAttentionLayers,
  rename: (name) => baseRename(name),
};
