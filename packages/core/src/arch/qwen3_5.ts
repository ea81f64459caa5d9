// Qwen3.5 / Qwen3.6 (HF model_type "qwen3_5": Qwen3_5ForConditionalGeneration with the text model under
// text_config, or Qwen3_5ForCausalLM) → llama.cpp arch "qwen35". Hybrid: every full_attention_interval-th
// layer is gated full attention, the others Gated DeltaNet; an optional MTP block is appended as the last
// block. Spec: docs/architecture.md ("Model format") and llama.cpp's src/models/qwen35.cpp.
import { baseRename, kvDim, textModelKeys } from './common.js';
import { fileError } from '../errors.js';
import type { HParams } from './hparams.js';
import { vHeadsGroupedToTiled } from './permutations.js';
import type { ArchDefinition, AxisPermutation, KeySpec, LayerKind, RenameResult, TensorRule } from './types.js';

// Gated DeltaNet sizes.
const nK = (h: HParams) => h.int('linear_num_key_heads');
const nV = (h: HParams) => h.int('linear_num_value_heads');
const dK = (h: HParams) => h.int('linear_key_head_dim');
const dV = (h: HParams) => h.int('linear_value_head_dim');
const keyDim = (h: HParams) => nK(h) * dK(h);
const valueDim = (h: HParams) => nV(h) * dV(h);
const convDim = (h: HParams) => 2 * keyDim(h) + valueDim(h);
const hidden = (h: HParams) => h.int('hidden_size');
const ff = (h: HParams) => h.int('intermediate_size');
const interval = (h: HParams) => h.int('full_attention_interval', 4);
const DEFAULT_MROPE_SECTION = [11, 11, 10, 0] as const;

// V-head reorder, grouped → tiled (spec 4.6 item 5), on exactly these axes.
const vRows = (headDim: (h: HParams) => number, offset: (h: HParams) => number = () => 0): AxisPermutation => ({
  axis: 'rows',
  perm: (h) => vHeadsGroupedToTiled(nK(h), nV(h), headDim(h), offset(h)),
});
const vCols: AxisPermutation = { axis: 'cols', perm: (h) => vHeadsGroupedToTiled(nK(h), nV(h), dV(h)) };
const one = () => 1;
const qkSegment = (h: HParams) => 2 * keyDim(h);

const arch = (h: HParams, key: string) => h.int(key);

const KEYS: KeySpec[] = [
  ...textModelKeys({
    blockCount: (h, ctx) => h.int('num_hidden_layers') + ctx.nMtp,
    // Interleaved MRoPE sections, always 4 entries; the loader requires the key.
    beforeFreqBase: [{
      key: 'rope.dimension_sections', type: 'ARRAY_INT32', value: (h) => {
        const s = h.rope().mrope_section;
        if (!Array.isArray(s)) return DEFAULT_MROPE_SECTION;
        return [...s.map(Number), 0, 0, 0, 0].slice(0, 4);
      },
    }],
  }),
  { key: 'nextn_predict_layers', type: 'UINT32', value: (_h, ctx) => (ctx.nMtp > 0 ? ctx.nMtp : undefined) },
  { key: 'ssm.conv_kernel', type: 'UINT32', value: (h) => arch(h, 'linear_conv_kernel_dim') },
  { key: 'ssm.state_size', type: 'UINT32', value: dK },
  { key: 'ssm.group_count', type: 'UINT32', value: nK },
  { key: 'ssm.time_step_rank', type: 'UINT32', value: nV },
  { key: 'ssm.inner_size', type: 'UINT32', value: valueDim },
  { key: 'full_attention_interval', type: 'UINT32', value: interval },
  // Partial rotary: only the first head_dim * factor dims are rotated.
  { key: 'rope.dimension_count', type: 'UINT32', value: (h) => Math.trunc(h.headDim() * Number(h.rope().partial_rotary_factor ?? 0.25)) },
];

const GLOBAL: TensorRule[] = [
  { hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', shape: (h) => [h.int('vocab_size'), hidden(h)] },
  // Zero-centred RMSNorm: HF multiplies by (1 + w).
  { hf: 'model.norm.weight', gguf: 'output_norm.weight', shape: (h) => [hidden(h)], transform: { value: 'add_one' } },
  { hf: 'lm_head.weight', gguf: 'output.weight', shape: (h) => [h.int('vocab_size'), hidden(h)], optional: (h) => h.get('tie_word_embeddings') === true },
];

const ALL: readonly LayerKind[] = ['linear', 'full', 'mtp'];
const ATTN: readonly LayerKind[] = ['full', 'mtp'];

const BLOCK: TensorRule[] = [
  // Pre-norms of every block (trunk and MTP), zero-centred.
  { hf: 'input_layernorm.weight', gguf: 'attn_norm.weight', layers: ALL, shape: (h) => [hidden(h)], transform: { value: 'add_one' } },
  { hf: 'post_attention_layernorm.weight', gguf: 'post_attention_norm.weight', layers: ALL, shape: (h) => [hidden(h)], transform: { value: 'add_one' } },

  // Gated DeltaNet: fused Q|K|V input projection (only V rows reordered), output gate z, per-head beta/alpha.
  { hf: 'linear_attn.in_proj_qkv.weight', gguf: 'attn_qkv.weight', layers: ['linear'], shape: (h) => [convDim(h), hidden(h)], transform: { permute: vRows(dV, qkSegment) } },
  { hf: 'linear_attn.in_proj_z.weight', gguf: 'attn_gate.weight', layers: ['linear'], shape: (h) => [valueDim(h), hidden(h)], transform: { permute: vRows(dV) } },
  { hf: 'linear_attn.in_proj_b.weight', gguf: 'ssm_beta.weight', layers: ['linear'], shape: (h) => [nV(h), hidden(h)], transform: { permute: vRows(one) } },
  { hf: 'linear_attn.in_proj_a.weight', gguf: 'ssm_alpha.weight', layers: ['linear'], shape: (h) => [nV(h), hidden(h)], transform: { permute: vRows(one) } },
  // Decay: llama.cpp multiplies softplus(alpha + dt_bias) by A = −exp(A_log) directly.
  { hf: 'linear_attn.A_log', gguf: 'ssm_a', layers: ['linear'], shape: (h) => [nV(h)], transform: { permute: vRows(one), value: 'neg_exp' } },
  { hf: 'linear_attn.dt_bias', gguf: 'ssm_dt.bias', layers: ['linear'], shape: (h) => [nV(h)], transform: { permute: vRows(one) } },
  // Depthwise causal conv over Q|K|V channels: [C, 1, K] squeezed to [C, K], kept F32.
  { hf: 'linear_attn.conv1d.weight', gguf: 'ssm_conv1d.weight', layers: ['linear'], shape: (h) => [convDim(h), 1, h.int('linear_conv_kernel_dim')], transform: { squeeze: true, keepF32: true, permute: vRows(dV, qkSegment) } },
  // Gated RMSNorm shared by all heads: multiplies by w itself (initialised to one), so no +1, no reorder.
  { hf: 'linear_attn.norm.weight', gguf: 'ssm_norm.weight', layers: ['linear'], shape: (h) => [dV(h)] },
  { hf: 'linear_attn.out_proj.weight', gguf: 'ssm_out.weight', layers: ['linear'], shape: (h) => [hidden(h), valueDim(h)], transform: { permute: vCols } },

  // Gated full attention: q_proj packs [query | gate] per head (kept as is), per-head q/k norms.
  { hf: 'self_attn.q_proj.weight', gguf: 'attn_q.weight', layers: ATTN, shape: (h) => [2 * h.int('num_attention_heads') * h.headDim(), hidden(h)] },
  { hf: 'self_attn.k_proj.weight', gguf: 'attn_k.weight', layers: ATTN, shape: (h) => [kvDim(h), hidden(h)] },
  { hf: 'self_attn.v_proj.weight', gguf: 'attn_v.weight', layers: ATTN, shape: (h) => [kvDim(h), hidden(h)] },
  { hf: 'self_attn.o_proj.weight', gguf: 'attn_output.weight', layers: ATTN, shape: (h) => [hidden(h), h.int('num_attention_heads') * h.headDim()] },
  { hf: 'self_attn.q_norm.weight', gguf: 'attn_q_norm.weight', layers: ATTN, shape: (h) => [h.headDim()], transform: { value: 'add_one' } },
  { hf: 'self_attn.k_norm.weight', gguf: 'attn_k_norm.weight', layers: ATTN, shape: (h) => [h.headDim()], transform: { value: 'add_one' } },

  // SwiGLU MLP, every block.
  { hf: 'mlp.gate_proj.weight', gguf: 'ffn_gate.weight', layers: ALL, shape: (h) => [ff(h), hidden(h)] },
  { hf: 'mlp.up_proj.weight', gguf: 'ffn_up.weight', layers: ALL, shape: (h) => [ff(h), hidden(h)] },
  { hf: 'mlp.down_proj.weight', gguf: 'ffn_down.weight', layers: ALL, shape: (h) => [hidden(h), ff(h)] },

  // MTP head (renamed from mtp.fc / pre_fc_norm_* / norm): fuses [embedding ‖ hidden] into one block input.
  { hf: 'eh_proj.weight', gguf: 'nextn.eh_proj.weight', layers: ['mtp'], shape: (h) => [hidden(h), 2 * hidden(h)] },
  { hf: 'enorm.weight', gguf: 'nextn.enorm.weight', layers: ['mtp'], shape: (h) => [hidden(h)], transform: { value: 'add_one' } },
  { hf: 'hnorm.weight', gguf: 'nextn.hnorm.weight', layers: ['mtp'], shape: (h) => [hidden(h)], transform: { value: 'add_one' } },
  { hf: 'shared_head.norm.weight', gguf: 'nextn.shared_head_norm.weight', layers: ['mtp'], shape: (h) => [hidden(h)], transform: { value: 'add_one' } },
];

/** MTP tensor prefixes → their name inside block L (the first block after the trunk). */
const MTP_RENAME = {
  fc: 'eh_proj',
  pre_fc_norm_embedding: 'enorm',
  pre_fc_norm_hidden: 'hnorm',
  norm: 'shared_head.norm',
} as const;

function rename(name: string, h: HParams, opts: { noMtp: boolean }): RenameResult {
  const base = baseRename(name);
  if (!('name' in base)) return base;
  let n = base.name;
  if (n.startsWith('model.mtp.')) n = n.slice('model.'.length);
  if (!n.startsWith('mtp.')) return { name: n };
  if (opts.noMtp) return { skip: 'mtp' };
  const L = h.int('num_hidden_layers');
  const parts = n.split('.');
  if (parts[1] === 'layers' && /^\d+$/.test(parts[2] ?? '') && parts.length > 3) {
    return { name: `model.layers.${L + Number(parts[2])}.${parts.slice(3).join('.')}` };
  }
  const head = parts[1] as keyof typeof MTP_RENAME;
  if (parts.length === 3 && Object.prototype.hasOwnProperty.call(MTP_RENAME, head)) {
    return { name: `model.layers.${L}.${MTP_RENAME[head]}.${parts[2]}` };
  }
  return { name: n }; // unknown mtp.* tensor: left for the converter to report as unmapped
}

function layerKinds(h: HParams): LayerKind[] {
  const n = h.int('num_hidden_layers');
  const every = interval(h);
  const kinds: LayerKind[] = Array.from({ length: n }, (_, i) => ((i + 1) % every === 0 ? 'full' : 'linear'));
  const declared = h.get('layer_types');
  if (Array.isArray(declared)) {
    // llama.cpp derives the pattern from full_attention_interval alone (no recurrent_layers key is written).
    declared.forEach((t, i) => {
      const want = kinds[i] === 'full' ? 'full_attention' : 'linear_attention';
      if (t !== want) {
        throw fileError(h.file, `layer_types[${i}] is ${JSON.stringify(t)} but full_attention_interval ${every} makes it ${want}`,
          'llama.cpp\'s qwen35 loader only supports the interval pattern; this checkpoint cannot be converted as is');
      }
    });
    if (declared.length !== n) {
      throw fileError(h.file, `layer_types has ${declared.length} entries for num_hidden_layers ${n}`, 'Fix config.json or re-download it');
    }
  }
  return kinds;
}

export const qwen3_5: ArchDefinition = {
  modelType: 'qwen3_5',
  hfArchitectures: ['Qwen3_5ForConditionalGeneration', 'Qwen3_5ForCausalLM'],
  ggufArch: 'qwen35',
  keys: KEYS,
  globalTensors: GLOBAL,
  blockTensors: BLOCK,
  layerKinds,
  rename,
};
