// The tensor-name table maps every fixture tensor (only vision is skipped, and said so); the converted
// values are the HF values with exactly the spec's transforms; metadata types pass an independent parser
// (@huggingface/gguf); the dry-run plan predicts the output size; q8_0 blocks hold the values.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gguf, GGUFValueType } from '@huggingface/gguf';
import { decodeToF32, f16BitsToF32, GgufReader, SafetensorsCheckpoint } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint, formatPlan, planConversion } from '../src/index.js';

let root: string;
let q35: string;
let q3: string;
let fp8: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-convert-map-'));
  ({ dir: q35 } = await generateFixture({ arch: 'qwen3_5', outDir: path.join(root, 'q35'), seed: 1 }));
  ({ dir: q3 } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'q3'), seed: 2 }));
  ({ dir: fp8 } = await generateFixture({ arch: 'qwen3_5', outDir: path.join(root, 'fp8'), seed: 4, fp8: true }));
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function hfNames(dir: string): Promise<string[]> {
  const ck = await SafetensorsCheckpoint.open(dir);
  const names = ck.names();
  await ck.close();
  return names;
}

describe('tensor-name table', () => {
  for (const [label, getDir, noMtp] of [['qwen3_5', () => q35, false], ['qwen3_5 --no-mtp', () => q35, true], ['qwen3', () => q3, false], ['qwen3_5 fp8', () => fp8, false]] as const) {
    it(`${label}: every tensor is converted, consumed as an FP8 scale, or a reported skip`, async () => {
      const dir = getDir();
      const plan = await planConversion({ input: dir, noMtp, outtype: 'f16' });
      await plan.checkpoint.close();
      const mapped = new Set(plan.tensorPlan.tensors.map((t) => t.hfName));
      const { vision, mtp, unused } = plan.tensorPlan.skipped;
      for (const n of await hfNames(dir)) {
        const accounted = mapped.has(n) || vision.includes(n) || mtp.includes(n) || (n.endsWith('.weight_scale_inv') && mapped.has(n.replace(/_scale_inv$/, '')));
        expect(accounted, n).toBe(true);
      }
      expect(unused).toEqual([]);
      expect(vision.every((n) => n.startsWith('model.visual.'))).toBe(true);
      expect(new Set(plan.tensorPlan.tensors.map((t) => t.ggufName)).size).toBe(plan.tensorPlan.tensors.length);
      if (label.startsWith('qwen3_5')) {
        expect(vision.length).toBeGreaterThan(0);
        expect(plan.notices.some((l) => /vision/.test(l))).toBe(true);
        // 8 layers = 6 Gated DeltaNet × 14 + 2 attention × 11, + 3 global, + 15 MTP (spec 4.5's count formula).
        expect(plan.tensorPlan.tensors.length).toBe(6 * 14 + 2 * 11 + 3 + (noMtp ? 0 : 15));
        expect(mtp.length).toBe(noMtp ? 15 : 0);
      } else {
        expect(plan.tensorPlan.tensors.length).toBe(4 * 11 + 3);
      }
    });
  }
});

describe('converted values (qwen3_5, f32)', () => {
  it('applies +1, −exp, squeeze, the V-head reorder, and nothing else', async () => {
    const out = path.join(root, 'q35-f32.gguf');
    await convertCheckpoint({ input: q35, output: out, outtype: 'f32', log: () => {} });
    const ck = await SafetensorsCheckpoint.open(q35);
    const g = await GgufReader.open(out);
    const hf = (n: string) => ck.readF32(`model.language_model.${n}`);
    const gg = async (n: string) => decodeToF32('F32', await g.readTensor(n));
    const cfg = JSON.parse(await fs.readFile(path.join(q35, 'config.json'), 'utf8')).text_config;
    const Hk = cfg.linear_num_key_heads;
    const Hv = cfg.linear_num_value_heads;
    const dv = cfg.linear_value_head_dim;
    const r = Hv / Hk;
    const keyDim = Hk * cfg.linear_key_head_dim;
    // new value head j*Hk + g holds old head g*r + j (spec 4.6 item 5), written out independently here
    const oldHead = (n: number) => (n % Hk) * r + Math.floor(n / Hk);
    try {
      const close = (a: Float32Array, b: ArrayLike<number>) => { expect(a.length).toBe(b.length); for (let i = 0; i < a.length; i++) expect(a[i]).toBeCloseTo(b[i]!, 6); };
      close(await gg('output_norm.weight'), (await hf('norm.weight')).map((x) => x + 1));
      close(await gg('blk.3.attn_q_norm.weight'), (await hf('layers.3.self_attn.q_norm.weight')).map((x) => x + 1));
      close(await gg('blk.0.ssm_norm.weight'), await hf('layers.0.linear_attn.norm.weight')); // gated norm: no +1
      const Alog = await hf('layers.0.linear_attn.A_log');
      close(await gg('blk.0.ssm_a'), Array.from({ length: Hv }, (_, n) => -Math.exp(Alog[oldHead(n)]!)));
      const dt = await hf('layers.0.linear_attn.dt_bias');
      close(await gg('blk.0.ssm_dt.bias'), Array.from({ length: Hv }, (_, n) => dt[oldHead(n)]!));

      const H = cfg.hidden_size;
      const qkv = await hf('layers.0.linear_attn.in_proj_qkv.weight');
      const gqkv = await gg('blk.0.attn_qkv.weight');
      for (let row = 0; row < 2 * keyDim + Hv * dv; row++) {
        const src = row < 2 * keyDim ? row : 2 * keyDim + oldHead(Math.floor((row - 2 * keyDim) / dv)) * dv + ((row - 2 * keyDim) % dv);
        for (let c = 0; c < H; c += 7) expect(gqkv[row * H + c]).toBe(qkv[src * H + c]);
      }
      const conv = await hf('layers.0.linear_attn.conv1d.weight');
      const gconv = await gg('blk.0.ssm_conv1d.weight');
      const K = cfg.linear_conv_kernel_dim;
      expect(g.tensor('blk.0.ssm_conv1d.weight').ne).toEqual([K, 2 * keyDim + Hv * dv]); // [C, 1, K] squeezed
      for (let ch = 2 * keyDim; ch < 2 * keyDim + Hv * dv; ch++) {
        const src = 2 * keyDim + oldHead(Math.floor((ch - 2 * keyDim) / dv)) * dv + ((ch - 2 * keyDim) % dv);
        for (let k = 0; k < K; k++) expect(gconv[ch * K + k]).toBe(conv[src * K + k]);
      }
      const o = await hf('layers.0.linear_attn.out_proj.weight');
      const go = await gg('blk.0.ssm_out.weight');
      const W = Hv * dv;
      for (let row = 0; row < H; row += 5) {
        for (let col = 0; col < W; col++) expect(go[row * W + col]).toBe(o[row * W + oldHead(Math.floor(col / dv)) * dv + (col % dv)]);
      }
      // Attention q_proj keeps its per-head [query | gate] packing: bytes unchanged.
      close(await gg('blk.3.attn_q.weight'), await hf('layers.3.self_attn.q_proj.weight'));
      // MTP: mtp.fc → blk.8.nextn.eh_proj, mtp.norm → shared_head_norm (+1).
      close(await gg('blk.8.nextn.eh_proj.weight'), await ck.readF32('mtp.fc.weight'));
      close(await gg('blk.8.nextn.shared_head_norm.weight'), (await ck.readF32('mtp.norm.weight')).map((x) => x + 1));
    } finally {
      await g.close();
      await ck.close();
    }
  });

  it('f16: big weights F16, norms/ssm_a/ssm_dt/conv1d F32; KV types pass @huggingface/gguf; size as planned', async () => {
    const plan = await planConversion({ input: q35, outtype: 'f16', output: path.join(root, 'q35-f16.gguf') });
    const text = formatPlan(plan);
    await plan.checkpoint.close();
    expect(text).toContain('model.language_model.layers.0.linear_attn.A_log');
    expect(text).toMatch(/blk\.0\.ssm_a\s+\[6\]\s+BF16 → F32/);
    const { output, bytes } = await convertCheckpoint({ input: q35, output: path.join(root, 'q35-f16.gguf'), outtype: 'f16', log: () => {} });
    expect((await fs.stat(output)).size).toBe(plan.fileSize);
    expect(bytes).toBe(plan.fileSize);

    const parsed = await gguf(output, { typedMetadata: true, allowLocalFile: true });
    for (const t of parsed.tensorInfos) {
      const f32 = t.n_dims === 1 || t.name.endsWith('_norm.weight') || t.name.endsWith('.ssm_conv1d.weight');
      expect([t.name, t.dtype as number]).toEqual([t.name, f32 ? 0 : 1]);
    }
    expect(parsed.tensorInfos.filter((t) => t.dtype === 0).length).toBeGreaterThan(40);
    const md = parsed.typedMetadata;
    const expectType = (key: string, type: GGUFValueType, sub?: GGUFValueType) => {
      expect(md[key], key).toBeDefined();
      expect([key, md[key]!.type, md[key]!.subType]).toEqual([key, type, sub]);
    };
    for (const k of ['block_count', 'context_length', 'embedding_length', 'feed_forward_length', 'attention.head_count', 'attention.head_count_kv',
      'attention.key_length', 'attention.value_length', 'nextn_predict_layers', 'ssm.conv_kernel', 'ssm.state_size', 'ssm.group_count',
      'ssm.time_step_rank', 'ssm.inner_size', 'full_attention_interval', 'rope.dimension_count']) expectType(`qwen35.${k}`, GGUFValueType.UINT32);
    expectType('qwen35.rope.freq_base', GGUFValueType.FLOAT32);
    expectType('qwen35.attention.layer_norm_rms_epsilon', GGUFValueType.FLOAT32);
    expectType('qwen35.rope.dimension_sections', GGUFValueType.ARRAY, GGUFValueType.INT32);
    expect((md['qwen35.rope.dimension_sections']!.value as number[]).length).toBe(4);
    expectType('tokenizer.ggml.token_type', GGUFValueType.ARRAY, GGUFValueType.INT32);
    expectType('tokenizer.ggml.tokens', GGUFValueType.ARRAY, GGUFValueType.STRING);
    expectType('tokenizer.ggml.eos_token_id', GGUFValueType.UINT32);
    expectType('general.file_type', GGUFValueType.UINT32);
    expect(md['general.file_type']!.value).toBe(1);
    expect(md['tokenizer.ggml.pre']!.value).toBe('qwen2'); // the fixtures ship the Qwen3 tokenizer
    expect(md['qwen35.rope.dimension_count']!.value).toBe(16);
  });

  it('q8_0: 2-D weights become Q8_0 blocks whose dequantized values are within d/2 of the f32 ones', async () => {
    const out = path.join(root, 'q3-q8.gguf');
    await convertCheckpoint({ input: q3, output: out, outtype: 'q8_0', log: () => {} });
    const ck = await SafetensorsCheckpoint.open(q3);
    const g = await GgufReader.open(out);
    try {
      expect(g.get('general.file_type')).toBe(7);
      const t = g.tensor('blk.0.ffn_down.weight');
      expect(t.type).toBe('Q8_0');
      const raw = await g.readTensor(t);
      const ref = await ck.readF32('model.layers.0.mlp.down_proj.weight');
      const dv = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
      for (let b = 0; b < ref.length / 32; b++) {
        const d = f16BitsToF32(dv.getUint16(b * 34, true));
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(ref[b * 32 + j]!));
        // d is stored as f16: the bound is half a step plus 127 × d's own rounding error.
        const dErr = Math.abs(d - amax / 127);
        expect(dErr).toBeLessThanOrEqual(d * 2 ** -11);
        for (let j = 0; j < 32; j++) expect(Math.abs(dv.getInt8(b * 34 + 2 + j) * d - ref[b * 32 + j]!)).toBeLessThanOrEqual(d * 0.5 + 127 * dErr + 1e-7);
      }
      expect(g.tensor('blk.0.attn_norm.weight').type).toBe('F32');
    } finally {
      await g.close();
      await ck.close();
    }
  });
});
