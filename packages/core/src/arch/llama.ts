// Llama / Mistral (HF model_type "llama", LlamaForCausalLM / MistralForCausalLM) → llama.cpp arch "llama".
// Differs from the Qwen decoders by one transform: q/k rows are un-permuted from HF's rotate-half
// layout to llama.cpp's interleaved RoPE pairs. llama3 RoPE scaling becomes a rope_freqs tensor.
import { allAttentionLayers, baseRename, DECODER_BLOCK_TENSORS, DECODER_GLOBAL_TENSORS, kvDim, optionalNumber, qDim, textModelKeys } from './common.js';
import type { HParams } from './hparams.js';
import { llamaRopeUnpermute } from './permutations.js';
import type { ArchDefinition, TensorRule } from './types.js';

const nHead = (h: HParams) => h.int('num_attention_heads');
const nKv = (h: HParams) => h.int('num_key_value_heads', nHead(h));
const hasBias = (h: HParams) => h.get('attention_bias') !== true;

const qPerm = { axis: 'rows', perm: (h: HParams) => llamaRopeUnpermute(nHead(h), qDim(h)) } as const;
const kPerm = { axis: 'rows', perm: (h: HParams) => llamaRopeUnpermute(nKv(h), kvDim(h)) } as const;

const blockTensors: TensorRule[] = DECODER_BLOCK_TENSORS.map((r) =>
  r.hf === 'self_attn.q_proj.weight' ? { ...r, transform: { permute: qPerm } }
  : r.hf === 'self_attn.k_proj.weight' ? { ...r, transform: { permute: kPerm } }
  : r,
);

export const llama: ArchDefinition = {
  modelType: 'llama',
  hfArchitectures: ['LlamaForCausalLM', 'LLaMAForCausalLM', 'MistralForCausalLM', 'LlamaModel'],
  ggufArch: 'llama',
  keys: [
    ...textModelKeys(),
    { key: 'vocab_size', type: 'UINT32', value: (h) => h.int('vocab_size') },
    { key: 'rope.dimension_count', type: 'UINT32', value: (h) => h.headDim() },
  ],
  globalTensors: DECODER_GLOBAL_TENSORS,
  blockTensors: [
    ...blockTensors,
    // attention_bias: true checkpoints (rare) carry biases, permuted like their weights.
    { hf: 'self_attn.q_proj.bias', gguf: 'attn_q.bias', shape: (h) => [qDim(h)], optional: hasBias, transform: { permute: qPerm } },
    { hf: 'self_attn.k_proj.bias', gguf: 'attn_k.bias', shape: (h) => [kvDim(h)], optional: hasBias, transform: { permute: kPerm } },
    { hf: 'self_attn.v_proj.bias', gguf: 'attn_v.bias', shape: (h) => [kvDim(h)], optional: hasBias },
    { hf: 'self_attn.o_proj.bias', gguf: 'attn_output.bias', shape: (h) => [h.int('hidden_size')], optional: hasBias },
  ],
  layerKinds: allAttentionLayers,
  rename: (name) => baseRename(name),
  extraTensors: (h) => {
    const r = h.rope();
    if (String(r.rope_type ?? '').toLowerCase() !== 'llama3') return [];
    return [{ gguf: 'rope_freqs.weight', values: llama3RopeFactors(h) }];
  },
};

/** Per-frequency scale factors of llama3 RoPE (Llama 3.1+), as llama.cpp's converter computes them. */
function llama3RopeFactors(h: HParams): Float32Array {
  const r = h.rope();
  const base = optionalNumber(r.rope_theta) ?? 10000;
  const dim = h.headDim();
  const factor = optionalNumber(r.factor) ?? 8;
  const lowFreqFactor = optionalNumber(r.low_freq_factor) ?? 1;
  const highFreqFactor = optionalNumber(r.high_freq_factor) ?? 4;
  const oldContext = optionalNumber(r.original_max_position_embeddings) ?? 8192;
  const lowWavelen = oldContext / lowFreqFactor;
  const highWavelen = oldContext / highFreqFactor;
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) {
    const freq = Math.fround(1 / Math.fround(base ** Math.fround((2 * i) / dim)));
    const wavelen = (2 * Math.PI) / freq;
    if (wavelen < highWavelen) out[i] = 1;
    else if (wavelen > lowWavelen) out[i] = factor;
    else {
      const smooth = (oldContext / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      out[i] = 1 / ((1 - smooth) / factor + smooth);
    }
  }
  return out;
}
