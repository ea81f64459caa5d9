// One seeded PEFT adapter on the qwen3_5 and qwen3 fixtures, four ways: the float64 reference forward on
// the checkpoint merged in HF space (the oracle), llama.cpp with the converted GGUF LoRA, qtk's engine
// with it, and llama.cpp on the merged GGUF. Tolerances: f32 sums only (below).
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '@qtk/convert';
import { GgufReader } from '@qtk/core';
import { Model, referenceForward } from '@qtk/engine';
import { loraConvertMain, loraMergeMain, readPeftAdapter } from '../src/index.js';
import { adapterFixture, maxAbsDiff, mergeInHfSpace, tokenIds, type AdapterFixture } from './adapter-fixture.js';
import { compareLogProbs, llamaLogProbs, logSoftmax } from '@qtk/fixtures/llama-oracle';

// With an f32 KV cache and no flash attention (`@qtk/fixtures/llama-oracle`, exactKv), llama.cpp and qtk's engine on f32 weights
// differ from float64 math only by f32 sums: max |Δ log p| measured 1.0e-5 (qwen3_5) and 8e-6 (qwen3) with
// the adapter applied at run time, 1.1e-5 / 7e-6 on the merged GGUF, 1.1e-5 for the engine, while the
// adapter itself moves log p by 21 / 19. A wrong permutation or scale shows up orders of magnitude above.
const F32_TOLERANCE = 1e-3;
const ENGINE_TOLERANCE = 1e-3;
const quiet = () => {};

async function engineLogits(gguf: string, tokens: number[], lora: { path: string; scale?: number }[] = []): Promise<Float32Array> {
  const m = await Model.load(gguf, { device: 'cpu', threads: 2 });
  try {
    await m.applyLora(lora);
    const s = m.session({ nCtx: 64 });
    try {
      return s.eval(tokens).logits;
    } finally {
      s.free();
    }
  } finally {
    m.free();
  }
}

describe.each(['qwen3_5', 'qwen3'] as const)('%s: one PEFT adapter, four paths', (arch) => {
  let fx: AdapterFixture;
  let adapterGguf: string;
  let mergedGguf: string;
  let vocab: number;
  let oracle: Float32Array; // reference log p on the HF-space merge
  let baseRef: Float32Array; // reference log p without the adapter
  const tokens = tokenIds(12, 3);

  beforeAll(async () => {
    fx = await adapterFixture(arch);
    adapterGguf = path.join(fx.root, 'adapter.gguf');
    await loraConvertMain({ input: fx.peftDir, base: fx.hfDir, output: adapterGguf, out: quiet });
    mergedGguf = path.join(fx.root, 'merged.gguf');
    await loraMergeMain({ base: fx.gguf, adapters: [fx.peftDir], output: mergedGguf, out: quiet });
    const hfMerged = path.join(fx.root, 'hf-merged');
    await mergeInHfSpace(fx.hfDir, fx.peftDir, hfMerged);
    const ref = await referenceForward(hfMerged, tokens);
    vocab = ref.vocab;
    oracle = logSoftmax(ref.logits, vocab);
    baseRef = logSoftmax((await referenceForward(fx.hfDir, tokens)).logits, vocab);
  }, 600_000);
  afterAll(() => fx?.cleanup());

  it('the adapter moves the reference distribution far beyond the tolerances', () => {
    expect(maxAbsDiff(oracle, baseRef)).toBeGreaterThan(1000 * F32_TOLERANCE);
  });

  it('llama.cpp with the converted GGUF LoRA matches the reference on the HF-space merge', async () => {
    const p = await llamaLogProbs(fx.gguf, tokens, vocab, { exactKv: true, lora: [{ filePath: adapterGguf }] });
    expect(compareLogProbs(p, oracle, vocab).maxDiff).toBeLessThan(F32_TOLERANCE);
  }, 120_000);

  it('qtk\'s engine with the GGUF LoRA matches the reference', async () => {
    const got = logSoftmax(await engineLogits(fx.gguf, tokens, [{ path: adapterGguf }]), vocab);
    expect(maxAbsDiff(got, oracle)).toBeLessThan(ENGINE_TOLERANCE);
  }, 120_000);

  it('llama.cpp on the merged GGUF matches the reference', async () => {
    const p = await llamaLogProbs(mergedGguf, tokens, vocab, { exactKv: true });
    expect(compareLogProbs(p, oracle, vocab).maxDiff).toBeLessThan(F32_TOLERANCE);
  }, 120_000);

  it('the merged GGUF equals the converted HF-space merge, bit for bit', async () => {
    const converted = path.join(fx.root, 'hf-merged.gguf');
    await convertCheckpoint({ input: path.join(fx.root, 'hf-merged'), output: converted, outtype: 'f32', log: quiet });
    const [a, b] = await Promise.all([GgufReader.open(mergedGguf), GgufReader.open(converted)]);
    try {
      const differing: string[] = [];
      for (const t of a.tensors) {
        const x = await a.readTensor(t);
        const y = await b.readTensor(b.tensor(t.name));
        if (Buffer.compare(Buffer.from(x), Buffer.from(y)) !== 0) differing.push(t.name);
      }
      expect(differing).toEqual([]);
    } finally {
      await a.close();
      await b.close();
    }
  }, 120_000);

  it('scale 0 gives the base model\'s engine logits exactly', async () => {
    const base = await engineLogits(fx.gguf, tokens);
    const zero = await engineLogits(fx.gguf, tokens, [{ path: adapterGguf, scale: 0 }]);
    expect(maxAbsDiff(zero, base)).toBe(0);
  }, 120_000);

  it('PEFT → GGUF → PEFT gives identical tensors', async () => {
    const back = path.join(fx.root, 'peft-back');
    await loraConvertMain({ input: adapterGguf, base: fx.hfDir, output: back, out: quiet });
    const [orig, again] = await Promise.all([readPeftAdapter(fx.peftDir), readPeftAdapter(back)]);
    const key = (m: { name: string; rank: number; scale: number; a: Float32Array; b: Float32Array }) =>
      [m.name, m.rank, m.scale, Buffer.from(m.a.buffer).toString('base64'), Buffer.from(m.b.buffer).toString('base64')].join('|');
    expect(again.modules.map(key).sort()).toEqual(orig.modules.map(key).sort());
  }, 60_000);
});
