// qtk plan: the table for Qwen3.6-27B from its config.json, and the inputs it refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { HParams, loraTargets, trainingMemory, trainingLayerShape } from '@qtk/core';
import { QWEN3_6_27B_CONFIG } from '@qtk/fixtures';
import { planMain } from '../src/plan/plan-main.js';
import { writeModel } from './gguf-helpers.js';
import { qwen35Layout } from './layouts.js';

const GIB = 1024 ** 3;
let dir: string;
const quiet = () => {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-plan-'));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(QWEN3_6_27B_CONFIG));
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('qtk plan for Qwen3.6-27B', () => {
  const opts = { ctx: 32768, parallel: 1, kvType: 'f16' as const, headroom: GIB, out: quiet };

  it('24 GiB at 32k context: Q8_0 does not fit, the recommendation is the largest preset that does', async () => {
    const p = await planMain({ input: dir, vram: 24 * GIB, ...opts });
    expect(p.rows.find((r) => r.preset === 'Q8_0')!.fits).toBe(false);
    const fitting = p.rows.filter((r) => r.fits);
    expect(p.recommended).toBe(fitting.sort((a, b) => b.fileBytes - a.fileBytes)[0]!.preset);
  });

  it('counts the KV cache of the 16 attention layers only: 2 GiB at 32k in f16', async () => {
    const p = await planMain({ input: path.join(dir, 'config.json'), vram: 24 * GIB, ...opts });
    expect(p.rows[0]!.serving.kvCache).toBe(16 * 32768 * 2 * 4 * 256 * 2);
  });

  it('8 GiB: nothing fits, and --json says so with a null recommendation', async () => {
    const lines: string[] = [];
    await planMain({ input: dir, vram: 8 * GIB, ...opts, json: true, out: (l) => lines.push(l) });
    expect(JSON.parse(lines.join('\n')).recommended).toBeNull();
  });
});

describe('qtk plan --train for Qwen3.6-27B (seq 2048, rank 16)', () => {
  const opts = { ctx: 32768, parallel: 1, kvType: 'f16' as const, headroom: GIB, out: quiet, train: { seqLen: 2048, rank: 16 } };

  it('counts the LoRA parameters of every trunk target the module map lists, as lora train does', async () => {
    const p = await planMain({ input: dir, vram: 24 * GIB, ...opts });
    const h = new HParams(QWEN3_6_27B_CONFIG as Record<string, unknown>, 'config.json');
    const expected = loraTargets('qwen3_5', h).reduce((a, t) => a + 16 * (t.inFeatures + t.outFeatures), 0);
    expect(p.training!.loraParams).toBe(expected);
  });

  it('evaluates the training formula on the bf16 weights and on each QLoRA base', async () => {
    const p = await planMain({ input: dir, vram: 24 * GIB, ...opts });
    const q4 = p.training!.rows.find((r) => r.base === 'Q4_K_M')!;
    const s = p.model.shape;
    const again = trainingMemory({
      baseWeightBytes: p.rows.find((r) => r.preset === 'Q4_K_M')!.serving.weights, loraParams: p.training!.loraParams,
      nLayers: 64, hidden: 5120, tokens: 2048, vocab: 248320, layer: trainingLayerShape(s),
    });
    expect(q4.memory.total).toBe(again.total);
  });

  it('24 GiB: no base fits for training, and the bf16 LoRA needs more than 50 GiB', async () => {
    const p = await planMain({ input: dir, vram: 24 * GIB, ...opts });
    expect(p.training!.recommended).toBeUndefined();
    expect(p.training!.rows.find((r) => r.base === 'BF16')!.memory.total).toBeGreaterThan(50 * GIB);
  });

  it('80 GiB: --json recommends training on the bf16 model', async () => {
    const lines: string[] = [];
    await planMain({ input: dir, vram: 80 * GIB, ...opts, json: true, out: (l) => lines.push(l) });
    const j = JSON.parse(lines.join('\n'));
    expect([j.training.recommended, j.training.rows.map((r: { base: string }) => r.base)]).toEqual(['BF16', ['BF16', 'Q8_0', 'Q5_K_M', 'Q4_K_M']]);
  });
});

describe('qtk plan refuses', () => {
  it('a config of an unknown architecture, listing the known ones', async () => {
    const f = path.join(dir, 'mamba.json');
    await writeFile(f, JSON.stringify({ architectures: ['MambaForCausalLM'], model_type: 'mamba' }));
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet }))
      .rejects.toThrow(/MambaForCausalLM.*is not supported\. The memory model .*knows: qwen3_5 \(Qwen3_5ForConditionalGeneration.*\. Pass the config\.json or GGUF of a model of one of these/);
  });

  it('a GGUF without the needed metadata, naming the key', async () => {
    const f = path.join(dir, 'bare.gguf');
    await writeModel(f, 'qwen35', { block_count: 5 }, qwen35Layout({ layers: 4, mtp: true, hidden: 256, ffn: 256, vocab: 32, nHead: 2, nHeadKv: 1, headDim: 64, nVHead: 4, nKHead: 2, vHeadDim: 32, kHeadDim: 32 }));
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet })).rejects.toThrow(/qwen35\.embedding_length is missing/);
  });

  it('--train on a GGUF without the DeltaNet value heads, naming the key', async () => {
    const f = path.join(dir, 'no-heads.gguf');
    const kv = {
      block_count: 5, nextn_predict_layers: 1, embedding_length: 256, feed_forward_length: 256, 'attention.head_count': 2, 'attention.head_count_kv': 1,
      'attention.key_length': 64, 'attention.value_length': 64, full_attention_interval: 4, 'ssm.conv_kernel': 4, 'ssm.inner_size': 128, 'ssm.group_count': 2, 'ssm.state_size': 32,
    };
    await writeModel(f, 'qwen35', kv, qwen35Layout({ layers: 4, mtp: true, hidden: 256, ffn: 256, vocab: 32, nHead: 2, nHeadKv: 1, headDim: 64, nVHead: 4, nKHead: 2, vHeadDim: 32, kHeadDim: 32 }));
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet, train: { seqLen: 256, rank: 8 } }))
      .rejects.toThrow(/no-heads\.gguf: qwen35\.ssm\.time_step_rank \(the DeltaNet value heads\) is missing/);
  });

  it('a GGUF of an architecture the memory model does not know, listing the known', async () => {
    const f = path.join(dir, 'gpt2.gguf');
    await writeModel(f, 'gpt2', { block_count: 1 }, [{ name: 'token_embd.weight', ne: [32, 8], type: 'F16' }]);
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet })).rejects.toThrow(/"gpt2" is not supported.*qwen35, qwen3, qwen2, llama\. Pass the config\.json or GGUF/);
  });
});
