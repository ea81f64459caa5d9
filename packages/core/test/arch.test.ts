// Architecture tables: the registry, table hygiene, the Qwen3.6-27B key values and tensor shapes of
// spec sections 2.3 and 4, and the two permutations checked against what they are for (head pairing,
// RoPE pair layout), not against their own formula.
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  ARCHITECTURES,
  convertedTensorType,
  HParams,
  llamaRopeUnpermute,
  QtkError,
  resolveArchitecture,
  vHeadsGroupedToTiled,
  type ArchDefinition,
  type LayerKind,
} from '../src/index.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Qwen3.6-27B's config.json as the spec describes it (section 2.1). */
const QWEN36_27B = {
  architectures: ['Qwen3_5ForConditionalGeneration'],
  model_type: 'qwen3_5',
  text_config: {
    model_type: 'qwen3_5_text', vocab_size: 248320, hidden_size: 5120, intermediate_size: 17408, num_hidden_layers: 64,
    num_attention_heads: 24, num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 262144, rms_norm_eps: 1e-6,
    tie_word_embeddings: false, linear_conv_kernel_dim: 4, linear_key_head_dim: 128, linear_value_head_dim: 128,
    linear_num_key_heads: 16, linear_num_value_heads: 48, full_attention_interval: 4, mtp_num_hidden_layers: 1,
    layer_types: Array.from({ length: 64 }, (_, i) => ((i + 1) % 4 === 0 ? 'full_attention' : 'linear_attention')),
    rope_parameters: { rope_type: 'default', rope_theta: 10000000, partial_rotary_factor: 0.25, mrope_section: [11, 11, 10], mrope_interleaved: true },
    eos_token_id: 248044,
  },
  vision_config: { depth: 27 },
  image_token_id: 248056,
};

const keyValues = (arch: ArchDefinition, h: HParams, nMtp: number) =>
  Object.fromEntries(arch.keys.map((k) => [k.key, k.value(h, { nMtp })]).filter(([, v]) => v !== undefined));

describe('registry', () => {
  it('resolves each supported HF class and refuses others with the list', () => {
    const cases: [Record<string, unknown>, string][] = [
      [QWEN36_27B, 'qwen3_5'],
      [{ architectures: ['Qwen3_5ForCausalLM'] }, 'qwen3_5'],
      [{ architectures: ['Qwen3ForCausalLM'] }, 'qwen3'],
      [{ architectures: ['Qwen2ForCausalLM'] }, 'qwen2'],
      [{ architectures: ['LlamaForCausalLM'] }, 'llama'],
      [{ model_type: 'qwen3' }, 'qwen3'],
    ];
    for (const [cfg, want] of cases) expect(resolveArchitecture(cfg, 'config.json').arch.modelType).toBe(want);
    let err: unknown;
    try {
      resolveArchitecture({ architectures: ['MambaForCausalLM'], model_type: 'mamba' }, '/x/config.json');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(QtkError);
    const msg = (err as Error).message;
    expect(msg).toMatch(/^\/x\/config\.json: architecture "MambaForCausalLM" is not supported/);
    for (const a of ARCHITECTURES) for (const n of [a.modelType, ...a.hfArchitectures]) expect(msg).toContain(n);
  });
});

describe.each(ARCHITECTURES.map((a) => [a.modelType, a] as const))('%s table', (_name, arch) => {
  it('one file named after its model_type; unique keys and GGUF names that fit ggml', () => {
    expect(existsSync(path.join(here, '../src/arch', `${arch.modelType}.ts`))).toBe(true);
    const keys = arch.keys.map((k) => k.key);
    expect(new Set(keys).size).toBe(keys.length);
    const names = [...arch.globalTensors.map((r) => r.gguf), ...arch.blockTensors.map((r) => `blk.999.${r.gguf}`)];
    expect(new Set(names).size).toBe(names.length);
    for (const n of names) expect(Buffer.byteLength(n)).toBeLessThan(64);
    for (const r of [...arch.globalTensors, ...arch.blockTensors]) expect(r.gguf).toMatch(/^[a-z_0-9.]+$/);
    const hf = arch.blockTensors.map((r) => r.hf);
    expect(new Set(hf).size).toBe(hf.length);
  });
});

describe('qwen3_5 on the Qwen3.6-27B config (spec 2.3, 4.2–4.5)', () => {
  const { arch, hparams: h } = resolveArchitecture(QWEN36_27B, 'config.json');

  it('writes every spec key with the spec value', () => {
    expect(keyValues(arch, h, 1)).toEqual({
      block_count: 65, context_length: 262144, embedding_length: 5120, feed_forward_length: 17408,
      'attention.head_count': 24, 'attention.head_count_kv': 4, 'rope.dimension_sections': [11, 11, 10, 0],
      'rope.freq_base': 10000000, 'attention.layer_norm_rms_epsilon': 1e-6, 'attention.key_length': 256,
      'attention.value_length': 256, nextn_predict_layers: 1, 'ssm.conv_kernel': 4, 'ssm.state_size': 128,
      'ssm.group_count': 16, 'ssm.time_step_rank': 48, 'ssm.inner_size': 6144, full_attention_interval: 4,
      'rope.dimension_count': 64,
    });
    const noMtp = keyValues(arch, h, 0);
    expect(noMtp.block_count).toBe(64);
    expect(noMtp.nextn_predict_layers).toBeUndefined();
    const types = Object.fromEntries(arch.keys.map((k) => [k.key, k.type]));
    expect(types['rope.dimension_sections']).toBe('ARRAY_INT32');
    expect(types['rope.freq_base']).toBe('FLOAT32');
    expect(types['attention.layer_norm_rms_epsilon']).toBe('FLOAT32');
    for (const k of ['block_count', 'attention.head_count_kv', 'attention.key_length', 'ssm.inner_size', 'rope.dimension_count', 'nextn_predict_layers']) expect(types[k]).toBe('UINT32');
  });

  it('mrope sections default to [11, 11, 10, 0] and pad to four', () => {
    const cfg = structuredClone(QWEN36_27B) as typeof QWEN36_27B;
    delete (cfg.text_config.rope_parameters as Partial<typeof cfg.text_config.rope_parameters>).mrope_section;
    expect(keyValues(arch, new HParams(cfg, 'c'), 0)['rope.dimension_sections']).toEqual([11, 11, 10, 0]);
    cfg.text_config.rope_parameters = { ...QWEN36_27B.text_config.rope_parameters, mrope_section: [24, 20] };
    expect(keyValues(arch, new HParams(cfg, 'c'), 0)['rope.dimension_sections']).toEqual([24, 20, 0, 0]);
  });

  it('has 866 tensors with MTP, 851 without, with the spec shapes', () => {
    const kinds: LayerKind[] = [...arch.layerKinds(h), 'mtp'];
    expect(kinds.filter((k) => k === 'full').length).toBe(16);
    const count = (ks: LayerKind[]) => arch.globalTensors.length + ks.reduce((a, k) => a + arch.blockTensors.filter((r) => r.layers!.includes(k)).length, 0);
    expect(count(kinds)).toBe(866);
    expect(count(kinds.slice(0, 64))).toBe(851);
    const shape = (hf: string) => arch.blockTensors.find((r) => r.hf === hf)!.shape(h);
    expect(shape('linear_attn.in_proj_qkv.weight')).toEqual([10240, 5120]);
    expect(shape('linear_attn.in_proj_z.weight')).toEqual([6144, 5120]);
    expect(shape('linear_attn.conv1d.weight')).toEqual([10240, 1, 4]);
    expect(shape('linear_attn.out_proj.weight')).toEqual([5120, 6144]);
    expect(shape('self_attn.q_proj.weight')).toEqual([12288, 5120]);
    expect(shape('self_attn.o_proj.weight')).toEqual([5120, 6144]);
    expect(shape('eh_proj.weight')).toEqual([5120, 10240]);
  });

  it('+1 on zero-centred norms only, −exp on A_log, reorder on exactly the six GDN families', () => {
    const rules = [...arch.globalTensors, ...arch.blockTensors];
    const plusOne = rules.filter((r) => r.transform?.value === 'add_one').map((r) => r.hf).sort();
    expect(plusOne).toEqual(['enorm.weight', 'hnorm.weight', 'input_layernorm.weight', 'model.norm.weight', 'post_attention_layernorm.weight',
      'self_attn.k_norm.weight', 'self_attn.q_norm.weight', 'shared_head.norm.weight']);
    expect(rules.filter((r) => r.transform?.value === 'neg_exp').map((r) => r.gguf)).toEqual(['ssm_a']);
    const reordered = rules.filter((r) => r.transform?.permute).map((r) => `${r.hf}:${r.transform!.permute!.axis}`).sort();
    expect(reordered).toEqual(['linear_attn.A_log:rows', 'linear_attn.conv1d.weight:rows', 'linear_attn.dt_bias:rows', 'linear_attn.in_proj_a.weight:rows',
      'linear_attn.in_proj_b.weight:rows', 'linear_attn.in_proj_qkv.weight:rows', 'linear_attn.in_proj_z.weight:rows', 'linear_attn.out_proj.weight:cols']);
  });

  it('renames multimodal, language_model and MTP names as the converter does', () => {
    const r = (n: string, noMtp = false) => arch.rename(n, h, { noMtp });
    expect(r('model.visual.blocks.0.attn.qkv.weight')).toEqual({ skip: 'vision' });
    expect(r('model.language_model.layers.3.self_attn.q_proj.weight')).toEqual({ name: 'model.layers.3.self_attn.q_proj.weight' });
    expect(r('mtp.layers.0.mlp.up_proj.weight')).toEqual({ name: 'model.layers.64.mlp.up_proj.weight' });
    expect(r('model.mtp.fc.weight')).toEqual({ name: 'model.layers.64.eh_proj.weight' });
    expect(r('mtp.pre_fc_norm_embedding.weight')).toEqual({ name: 'model.layers.64.enorm.weight' });
    expect(r('mtp.pre_fc_norm_hidden.weight')).toEqual({ name: 'model.layers.64.hnorm.weight' });
    expect(r('mtp.norm.weight')).toEqual({ name: 'model.layers.64.shared_head.norm.weight' });
    expect(r('mtp.fc.weight', true)).toEqual({ skip: 'mtp' });
  });

  it('refuses a layer_types pattern llama.cpp cannot express', () => {
    const cfg = structuredClone(QWEN36_27B);
    cfg.text_config.layer_types[0] = 'full_attention';
    expect(() => arch.layerKinds(new HParams(cfg, 'config.json'))).toThrow(/layer_types\[0\].*only supports the interval pattern/);
  });
});

describe('permutations', () => {
  it('V-head reorder: after it, ggml\'s tiled pairing (n mod H_k) meets the key head HF paired it with', () => {
    for (const [hk, hv, hd] of [[16, 48, 3], [2, 6, 4], [4, 8, 1]] as const) {
      const perm = vHeadsGroupedToTiled(hk, hv, hd, 5)!;
      const r = hv / hk;
      expect([...perm.slice(0, 5)]).toEqual([0, 1, 2, 3, 4]); // Q/K segment untouched
      expect(new Set(perm).size).toBe(perm.length);
      for (let n = 0; n < hv; n++) {
        const oldHead = (perm[5 + n * hd]! - 5) / hd;
        expect(Number.isInteger(oldHead)).toBe(true);
        expect(Math.floor(oldHead / r)).toBe(n % hk); // HF: value head g*r+j uses key head g
        for (let d = 0; d < hd; d++) expect(perm[5 + n * hd + d]).toBe(5 + oldHead * hd + d); // whole heads move
      }
    }
    expect(vHeadsGroupedToTiled(4, 4, 8)).toBeNull();
  });

  it('llama Q/K un-permute: interleaved-pair RoPE on permuted rows equals HF rotate-half RoPE', () => {
    const nHeads = 3;
    const hd = 8;
    const perm = llamaRopeUnpermute(nHeads, nHeads * hd);
    const q = Float64Array.from({ length: nHeads * hd }, (_, i) => Math.sin(i * 1.7) + 0.1 * i);
    const pos = 5;
    const theta = (i: number) => pos * 10000 ** ((-2 * i) / hd);
    // HF: pairs (i, i + hd/2) per head.
    const hfOut = new Float64Array(q.length);
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const a = q[h * hd + i]!, b = q[h * hd + i + hd / 2]!, c = Math.cos(theta(i)), s = Math.sin(theta(i));
        hfOut[h * hd + i] = a * c - b * s;
        hfOut[h * hd + i + hd / 2] = b * c + a * s;
      }
    }
    // llama.cpp normal RoPE: pairs (2i, 2i + 1) of the permuted rows.
    const qp = Float64Array.from(perm, (src) => q[src]!);
    const ggOut = new Float64Array(q.length);
    for (let h = 0; h < nHeads; h++) {
      for (let i = 0; i < hd / 2; i++) {
        const a = qp[h * hd + 2 * i]!, b = qp[h * hd + 2 * i + 1]!, c = Math.cos(theta(i)), s = Math.sin(theta(i));
        ggOut[h * hd + 2 * i] = a * c - b * s;
        ggOut[h * hd + 2 * i + 1] = b * c + a * s;
      }
    }
    for (let k = 0; k < q.length; k++) expect(ggOut[k]).toBeCloseTo(hfOut[perm[k]!]!, 12);
  });
});

describe('output types (spec 4.7)', () => {
  it('keeps norms, 1-D, non-.weight and conv1d in F32; q8_0 falls back to F16 for odd rows', () => {
    expect(convertedTensorType('blk.0.attn_norm.weight', [5120], 'bf16')).toBe('F32');
    expect(convertedTensorType('blk.0.attn_q_norm.weight', [256], 'f16')).toBe('F32');
    expect(convertedTensorType('blk.0.ssm_a', [48], 'f16')).toBe('F32');
    expect(convertedTensorType('blk.0.ssm_conv1d.weight', [4, 10240], 'bf16')).toBe('F32');
    expect(convertedTensorType('blk.0.attn_qkv.weight', [5120, 10240], 'bf16')).toBe('BF16');
    expect(convertedTensorType('token_embd.weight', [5120, 248320], 'q8_0')).toBe('Q8_0');
    expect(convertedTensorType('blk.0.ssm_beta.weight', [40, 48], 'q8_0')).toBe('F16');
    expect(convertedTensorType('blk.0.ffn_up.weight', [64, 128], 'f32')).toBe('F32');
  });
});
