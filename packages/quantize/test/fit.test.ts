// qtk quantize --fit: the output never exceeds the budget, records its mix, keeps what llama.cpp keeps F32,
// and refuses a budget below the smallest possible file (saying what that is).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, QtkError } from '@qtk/core';
import { quantizeGguf } from '../src/quantize-gguf.js';
import { fitGguf } from '../src/fit/fit-gguf.js';
import { allocate } from '../src/fit/allocate.js';
import { fitCandidates } from '../src/fit/candidates.js';
import { measureErrors } from '../src/fit/measure.js';
import { createRowQuantizer } from '../src/engine.js';
import { writeModel } from './gguf-helpers.js';
import { qwen35Layout, type LayoutTensor } from './layouts.js';
import { rng } from './rows.js';

const DIMS = { layers: 4, mtp: true, hidden: 256, ffn: 512, vocab: 64, nHead: 2, nHeadKv: 1, headDim: 64, nVHead: 4, nKHead: 2, vHeadDim: 32, kHeadDim: 32 };
const KV = {
  block_count: 5, nextn_predict_layers: 1, embedding_length: 256, feed_forward_length: 512, 'attention.head_count': 2, 'attention.head_count_kv': 1,
  'attention.key_length': 64, 'attention.value_length': 64, full_attention_interval: 4,
  'ssm.conv_kernel': 4, 'ssm.inner_size': 128, 'ssm.group_count': 2, 'ssm.state_size': 32,
};
const layout: LayoutTensor[] = qwen35Layout(DIMS);
const quiet = () => {};
let dir: string;
let model: string;
let q4Size: number;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-fit-'));
  model = path.join(dir, 'tiny-F16.gguf');
  await writeModel(model, 'qwen35', KV, layout);
  await quantizeGguf({ input: model, output: path.join(dir, 'q4.gguf'), preset: 'Q4_K_M', threads: 1, log: quiet });
  q4Size = (await stat(path.join(dir, 'q4.gguf'))).size;
}, 120_000);
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('--fit at the size of Q4_K_M', () => {
  let out: string;
  let reader: GgufReader;
  beforeAll(async () => {
    out = path.join(dir, 'fit.gguf');
    await fitGguf({ input: model, output: out, budget: q4Size, threads: 1, log: quiet });
    reader = await GgufReader.open(out);
  }, 120_000);
  afterAll(async () => { await reader?.close(); });

  it('writes a file no larger than the budget', async () => {
    expect((await stat(out)).size).toBeLessThanOrEqual(q4Size);
  });

  it('records every quantized tensor\'s type under quantize.fit.types, equal to the type written', () => {
    const types = reader.get<string[]>('quantize.fit.types')!;
    expect(types.length).toBeGreaterThan(0);
    for (const entry of types) {
      const [name, type] = entry.split('=');
      expect(reader.tensor(name!).type).toBe(type);
    }
  });

  it('keeps the tensors llama.cpp never quantizes (norms, conv, 1-D) in their stored type', () => {
    for (const t of layout.filter((x) => x.type === 'F32')) expect(reader.tensor(t.name).type).toBe('F32');
  });
});

describe('--fit refuses what cannot be done', () => {
  it('a budget below the smallest possible model: says the minimum', async () => {
    const err = await fitGguf({ input: model, output: path.join(dir, 'tiny.gguf'), budget: 1000, threads: 1, log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as Error).message).toMatch(/below the smallest this model can be: [\d.]+ GiB \(\d+ bytes\).*Pass --fit [\d.]+GiB or more/);
  });

  it('with --ctx, a budget the context memory alone fills: says the minimum including it', async () => {
    const err = await fitGguf({ input: model, output: path.join(dir, 'tiny.gguf'), budget: q4Size, ctx: 1 << 20, threads: 1, log: quiet }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/of context memory at --ctx 1048576.*or a smaller --ctx/);
  });

  it('a GGUF without the architecture\'s keys: names the missing key', async () => {
    const bare = path.join(dir, 'bare.gguf');
    await writeModel(bare, 'qwen35', { block_count: 5 }, layout);
    await expect(fitGguf({ input: bare, output: path.join(dir, 'x.gguf'), budget: q4Size, threads: 1, log: quiet })).rejects.toThrow(/qwen35\.embedding_length is missing/);
  });
});

describe('errors measured with an importance matrix', () => {
  it('do not depend on its scale: weights w and 100·w give the same error per type (within the quantizer rounding)', async () => {
    const r = await GgufReader.open(model);
    try {
      const t = fitCandidates(r.tensor('blk.0.ffn_down.weight'));
      const next = rng(7);
      const w = Float32Array.from({ length: t.ne[0]! }, () => 0.05 + next());
      const engine = createRowQuantizer('auto', 1);
      const a = await measureErrors(r, t, engine, w);
      const b = await measureErrors(r, t, engine, w.map((x) => 100 * x));
      expect(b.map((e, k) => e / a[k]!).every((q) => Math.abs(q - 1) < 1e-3)).toBe(true);
    } finally {
      await r.close();
    }
  });
});

describe('allocate', () => {
  // Random convex-ish (bytes, error) curves: more bytes, less error.
  const r = rng(7);
  const items = Array.from({ length: 40 }, () => {
    const base = 100 + Math.floor(r() * 1000);
    const bytes = [1, 1.3, 1.6, 2, 2.6].map((f) => Math.round(base * f));
    const scale = r() * 10;
    return { bytes, error: bytes.map((b) => (scale * base * base) / (b * b)) };
  });
  const budget = Math.round(items.reduce((s, it) => s + it.bytes[2]!, 0));

  it('never exceeds the budget', () => {
    expect(allocate(items, budget).bytes).toBeLessThanOrEqual(budget);
  });

  it('has less total error than giving every item the same option within the budget', () => {
    const uniform = Math.min(...[0, 1, 2, 3, 4].filter((k) => items.reduce((s, it) => s + it.bytes[k]!, 0) <= budget)
      .map((k) => items.reduce((s, it) => s + it.error[k]!, 0)));
    expect(allocate(items, budget).error).toBeLessThan(uniform);
  });
});

describe('--fit and its output', () => {
  it('refuses to write over its input before measuring anything', async () => {
    await expect(fitGguf({ input: model, output: model, budget: q4Size, force: true, threads: 1, log: quiet })).rejects.toThrow(/input/);
  });
});
