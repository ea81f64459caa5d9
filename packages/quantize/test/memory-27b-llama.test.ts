// Qwen3.6-27B's serving memory against llama.cpp's own plan for it: a Q4_K_M GGUF header written from the
// 27B config.json (qtk's metadata keys, the fixture's tokenizer padded to 248320 entries, every tensor
// shape and type) over a sparse file, handed to node-llama-cpp's resource simulation, which creates the
// llama.cpp context without loading weights and reports the memory it allocates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, describeConfig, resolveArchitecture, servingMemory, type GgufKV, type ModelDescription } from '@qtk/core';
import { QWEN3_6_27B_CONFIG, generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { GgmlType, GgufInsights, getLlama, readGgufFileInfo } from 'node-llama-cpp';
import { presetSize } from '../src/plan/sizes.js';
import { writeSparseGguf } from './sparse-gguf.js';

const VOCAB = 248320;
let dir: string;
let file: string;
let model: ModelDescription;
let insights: GgufInsights;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-27b-'));
  const config = structuredClone(QWEN3_6_27B_CONFIG) as unknown as Record<string, unknown>;
  model = describeConfig(config, 'Qwen3.6-27B/config.json');
  // The tokenizer keys of a converted fixture (the real Qwen3 tokenizer), padded as the converter pads.
  await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf') });
  await convertCheckpoint({ input: path.join(dir, 'hf'), output: path.join(dir, 'tok.gguf'), outtype: 'f16', log: () => {} });
  const r = await GgufReader.open(path.join(dir, 'tok.gguf'));
  const tok = [...r.kv.values()].filter((kv) => kv.key.startsWith('tokenizer.'));
  await r.close();
  const kvs: Pick<GgufKV, 'key' | 'type' | 'value' | 'elemType'>[] = [
    { key: 'general.architecture', type: 'STRING', value: 'qwen35' },
    { key: 'general.file_type', type: 'UINT32', value: 15 },
  ];
  const { arch, hparams } = resolveArchitecture(config, 'config.json');
  for (const k of arch.keys) {
    const v = k.value(hparams, { nMtp: 1 });
    if (v === undefined) continue;
    const key = `qwen35.${k.key}`;
    if (k.type === 'ARRAY_INT32') kvs.push({ key, type: 'ARRAY', elemType: 'INT32', value: [...(v as number[])] });
    else kvs.push({ key, type: k.type, value: v as number });
  }
  for (const kv of tok) {
    if (kv.key === 'tokenizer.ggml.tokens') kvs.push({ ...kv, value: [...(kv.value as string[]), ...Array.from({ length: VOCAB - (kv.value as string[]).length }, (_, i) => `[PAD${i}]`)] });
    else if (kv.key === 'tokenizer.ggml.token_type') kvs.push({ ...kv, value: [...(kv.value as number[]), ...Array.from({ length: VOCAB - (kv.value as number[]).length }, () => 4)] });
    else kvs.push(kv);
  }
  const q4 = presetSize(model, 'Q4_K_M');
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  file = path.join(dir, 'Qwen3.6-27B-Q4_K_M.gguf');
  await writeSparseGguf(file, kvs, q4.choices.map((c) => ({ name: c.name, ne: byName.get(c.name)!.ne, type: c.type })));
  const llama = await getLlama({ gpu: false });
  insights = await GgufInsights.from(await readGgufFileInfo(file), llama);
}, 300_000);
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('Qwen3.6-27B context memory vs llama.cpp (CPU, Q4_K_M header, sparse file)', () => {
  it.each([[4096, 1], [32768, 1], [32768, 2]])('context %i × %i sequence(s): KV + state + logits + compute within 10 percent', async (ctx, seq) => {
    const got = await insights.estimateContextResourceRequirementsV2({ contextSize: ctx, sequences: seq, modelGpuLayers: 0 });
    const est = servingMemory(model.shape, 0, { ctx, parallel: seq, kvType: 'f16' });
    expect(Math.abs(est.total / got.cpuRam - 1)).toBeLessThan(0.1);
  }, 120_000);

  it.each([['q8_0', GgmlType.Q8_0], ['q4_0', GgmlType.Q4_0]] as const)('context 32768 with a %s KV cache: within 10 percent', async (kvType, ggml) => {
    const got = await insights.estimateContextResourceRequirementsV2({ contextSize: 32768, sequences: 1, modelGpuLayers: 0, kvCacheKeyType: ggml, kvCacheValueType: ggml });
    const est = servingMemory(model.shape, 0, { ctx: 32768, parallel: 1, kvType });
    expect(Math.abs(est.total / got.cpuRam - 1)).toBeLessThan(0.1);
  }, 120_000);
});
