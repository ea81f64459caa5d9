// The engine against llama.cpp (node-llama-cpp 3.21.1, the same ggml build) on the same GGUFs:
// f32, f16 from @qtk/convert; Q8_0, Q4_0 and Q4_K blocks written by ggml's own quantizer.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { Model } from '../src/index.js';
import { convertTo, fixtureGguf, requantizeGguf, tokenIds, type FixtureGguf } from './helpers.js';
import { compareLogProbs, llamaLogProbs, logSoftmax } from '@qtk/fixtures/llama-oracle';

async function engineLogProbs(gguf: string, tokens: number[]) {
  const m = await Model.load(gguf, { device: 'cpu', threads: 1 });
  try {
    const s = m.session({ nCtx: 64 });
    const lp = logSoftmax(s.eval(tokens).logits, m.params.nVocab);
    s.free();
    return { lp, vocab: m.params.nVocab, repacked: m.weights.repacked.size };
  } finally {
    m.free();
  }
}

// With an f32 KV cache and no flash attention, llama.cpp runs the same ggml kernels on the same
// blocks (both keep Q4_0/Q4_K in the CPU_REPACK layout): measured max |Δ log p| ≤ 1e-6 and KL ~1e-14
// for every type. Bounds: 1e-4 and 1e-8. A wrong RoPE, head pairing or norm gives KL > 0.1.
const EXACT = { meanKl: 1e-8, maxDiff: 1e-4 };
// llama.cpp's defaults (f16 KV cache, flash attention auto) round K and V to f16: measured mean KL
// ≤ 1e-4 and max |Δ log p| ≤ 0.03 against the engine on f16 weights.
const DEFAULTS = { meanKl: 1e-3, maxDiff: 0.1 };

for (const arch of ['qwen3', 'qwen3_5'] as const) {
  describe(`${arch} engine vs llama.cpp`, () => {
    let f: FixtureGguf;
    const toks = tokenIds(16, 11);
    // hidden 256: rows long enough for Q4_K's 256-value blocks
    beforeAll(async () => {
      f = await fixtureGguf({ arch, hidden: 256, layers: 4 }, 'f32');
    });
    afterAll(() => f?.cleanup());

    for (const type of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'] as const) {
      it(`${type}: same log-probabilities as llama.cpp`, async () => {
        let gguf = f.gguf;
        if (type === 'F16') gguf = await convertTo(f.hfDir, 'f16');
        else if (type !== 'F32') {
          gguf = path.join(path.dirname(f.gguf), `model-${type}.gguf`);
          await requantizeGguf(f.gguf, gguf, type);
        }
        const mine = await engineLogProbs(gguf, toks);
        const r = compareLogProbs(await llamaLogProbs(gguf, toks, mine.vocab, { exactKv: true }), mine.lp, mine.vocab);
        console.log(`${arch} ${type} (f32 KV): mean KL ${r.meanKl.toExponential(2)}, top-1 ${(r.top1 * 100).toFixed(1)}%, max |Δ log p| ${r.maxDiff.toExponential(2)}, ${mine.repacked} weights repacked`);
        expect(r.meanKl).toBeLessThan(EXACT.meanKl);
        expect(r.maxDiff).toBeLessThan(EXACT.maxDiff);
        expect(r.top1).toBe(1);
        if (type === 'Q4_0' || type === 'Q4_K') expect(mine.repacked).toBeGreaterThan(0);
        if (type === 'F16') {
          const d = compareLogProbs(await llamaLogProbs(gguf, toks, mine.vocab), mine.lp, mine.vocab);
          console.log(`${arch} F16 (llama.cpp defaults, f16 KV): mean KL ${d.meanKl.toExponential(2)}, top-1 ${(d.top1 * 100).toFixed(1)}%, max |Δ log p| ${d.maxDiff.toFixed(4)}`);
          expect(d.meanKl).toBeLessThan(DEFAULTS.meanKl);
          expect(d.maxDiff).toBeLessThan(DEFAULTS.maxDiff);
        }
      });
    }
  });
}
