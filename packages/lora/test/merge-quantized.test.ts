// `qtk lora merge` into a quantized base (dequantized, merged, written F16 with a warning), merge
// scale 0, and eval ppl --lora through the engine's entry point.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufReader } from '@qtk/core';
import { evalPplMain, referenceForward } from '@qtk/engine';
import { quantizeGguf } from '@qtk/quantize';
import { loraConvertMain, loraMergeMain } from '../src/index.js';
import { adapterFixture, mergeInHfSpace, tokenIds, type AdapterFixture } from './adapter-fixture.js';
import { compareLogProbs, llamaLogProbs, logSoftmax } from '@qtk/fixtures/llama-oracle';

const quiet = () => {};
let fx: AdapterFixture;
let q8: string;
let adapterGguf: string;

beforeAll(async () => {
  fx = await adapterFixture('qwen3');
  q8 = path.join(fx.root, 'base-Q8_0.gguf');
  await quantizeGguf({ input: fx.gguf, output: q8, preset: 'Q8_0', threads: 1, log: quiet });
  adapterGguf = path.join(fx.root, 'adapter.gguf');
  await loraConvertMain({ input: fx.peftDir, base: fx.hfDir, output: adapterGguf, out: quiet });
}, 300_000);
afterAll(() => fx?.cleanup());

describe('merge into a quantized base', () => {
  let merged: string;
  let warnings: string[];
  beforeAll(async () => {
    merged = path.join(fx.root, 'merged-from-q8.gguf');
    warnings = (await loraMergeMain({ base: q8, adapters: [adapterGguf], output: merged, out: quiet })).warnings;
  }, 120_000);

  it('warns that merging into a quantized model loses quality', () => {
    expect(warnings.join('\n')).toMatch(/base is quantized \(Q8_0\).*loses quality/);
  });

  it('writes every matrix as F16 and general.file_type MOSTLY_F16', async () => {
    const r = await GgufReader.open(merged);
    try {
      const matrixTypes = new Set(r.tensors.filter((t) => t.ne.filter((d) => d > 1).length >= 2).map((t) => t.type));
      expect({ types: [...matrixTypes], fileType: r.get('general.file_type') }).toEqual({ types: ['F16'], fileType: 1 });
    } finally {
      await r.close();
    }
  });

  it('llama.cpp on it is as close to the HF-space merge as the Q8_0 base is to the HF base', async () => {
    const tokens = tokenIds(10, 9);
    const hfMerged = path.join(fx.root, 'hf-merged');
    await mergeInHfSpace(fx.hfDir, fx.peftDir, hfMerged);
    const ref = await referenceForward(hfMerged, tokens, { roundMatmulInputs: 'f16' });
    const V = ref.vocab;
    const oracle = logSoftmax(ref.logits, V);
    const baseOracle = logSoftmax((await referenceForward(fx.hfDir, tokens, { roundMatmulInputs: 'f16' })).logits, V);
    const mergedP = await llamaLogProbs(merged, tokens, V, { exactKv: true });
    const mergedErr = compareLogProbs(mergedP, oracle, V).maxDiff;
    const q8Err = compareLogProbs(await llamaLogProbs(q8, tokens, V, { exactKv: true }), baseOracle, V).maxDiff;
    // F16 storage of the merged weights adds at most convert's F16 tolerance (0.1) to Q8_0's own error;
    // the adapter moves log p far more than that, so an adapter lost in the merge fails here.
    expect({ withinQuantError: mergedErr < q8Err + 0.1, adapterVisible: compareLogProbs(mergedP, baseOracle, V).maxDiff > 4 * (q8Err + 0.1) })
      .toEqual({ withinQuantError: true, adapterVisible: true });
  }, 180_000);
});

describe('scale 0', () => {
  it('merge --scale 0 reproduces the base tensors bit for bit', async () => {
    const out = path.join(fx.root, 'merged-scale0.gguf');
    await loraMergeMain({ base: fx.gguf, adapters: [fx.peftDir], output: out, scale: 0, out: quiet });
    const [a, b] = await Promise.all([GgufReader.open(fx.gguf), GgufReader.open(out)]);
    try {
      const diff: string[] = [];
      for (const t of a.tensors) if (Buffer.compare(Buffer.from(await a.readTensor(t)), Buffer.from(await b.readTensor(b.tensor(t.name)))) !== 0) diff.push(t.name);
      expect(diff).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  }, 60_000);

  it('eval ppl --lora FILE:0 gives the base perplexity exactly', async () => {
    const text = path.join(fx.root, 'text.txt');
    await fs.writeFile(text, 'def add(a, b):\n    return a + b\n'.repeat(40));
    const args = { model: fx.gguf, data: text, ctx: 64, chunks: 2, threads: 2, device: 'cpu' as const, out: quiet };
    const base = await evalPplMain(args);
    const zero = await evalPplMain({ ...args, lora: [{ path: adapterGguf, scale: 0 }] });
    const one = await evalPplMain({ ...args, lora: [{ path: adapterGguf }] });
    expect({ zero: zero.ppl, moved: Math.abs(one.ppl - base.ppl) > 1e-3 }).toEqual({ zero: base.ppl, moved: true });
  }, 120_000);
});

