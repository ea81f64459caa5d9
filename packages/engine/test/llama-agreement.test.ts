// The engine against llama.cpp (node-llama-cpp 3.21.1, the same ggml build) on the same GGUFs:
// f32, f16 from @qtk/convert; Q8_0, Q4_0 and Q4_K blocks written by ggml's own quantizer.
// Both sides run ggml's CPU matmuls, so the remaining gap is llama.cpp's f16 KV cache.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as path from 'node:path';
import { Model } from '../src/index.js';
import { convertTo, fixtureGguf, requantizeGguf, tokenIds, type FixtureGguf } from './helpers.js';
import { compareLogProbs, llamaLogProbs, logSoftmax } from './llama-oracle.js';

async function agreement(gguf: string, tokens: number[]) {
  const m = await Model.load(gguf, { device: 'cpu', threads: 2 });
  try {
    const s = m.session({ nCtx: 64 });
    const mine = logSoftmax(s.eval(tokens).logits, m.params.nVocab);
    s.free();
    const ref = await llamaLogProbs(gguf, tokens, m.params.nVocab);
    return compareLogProbs(ref, mine, m.params.nVocab);
  } finally {
    m.free();
  }
}

// Measured (2 threads): mean KL ≤ 1e-4 and max |Δ log p| ≤ 0.09 for every type below; the bounds
// leave ~5x room. A wrong RoPE, head pairing or norm gives KL > 0.1 and top-1 < 0.5.
const BOUNDS = { meanKl: 1e-3, maxDiff: 0.4, top1: 0.9 };

for (const [arch, hidden] of [['qwen3', 256], ['qwen3_5', 256]] as const) {
  describe(`${arch} engine vs llama.cpp`, () => {
    let f: FixtureGguf;
    const toks = tokenIds(16, 11);
    beforeAll(async () => {
      f = await fixtureGguf({ arch, hidden, layers: 4 }, 'f32');
    });
    afterAll(() => f?.cleanup());

    for (const type of ['F32', 'F16', 'Q8_0', 'Q4_0', 'Q4_K'] as const) {
      it(`${type}: top-1 agreement and KLD`, async () => {
        let gguf = f.gguf;
        if (type === 'F16') gguf = await convertTo(f.hfDir, 'f16');
        else if (type !== 'F32') {
          gguf = path.join(path.dirname(f.gguf), `model-${type}.gguf`);
          await requantizeGguf(f.gguf, gguf, type);
        }
        const r = await agreement(gguf, toks);
        console.log(`${arch} ${type}: mean KL ${r.meanKl.toExponential(2)}, max KL ${r.maxKl.toExponential(2)}, top-1 ${(r.top1 * 100).toFixed(1)}%, max |Δ log p| ${r.maxDiff.toFixed(4)}`);
        expect(r.meanKl).toBeLessThan(BOUNDS.meanKl);
        expect(r.maxDiff).toBeLessThan(BOUNDS.maxDiff);
        expect(r.top1).toBeGreaterThanOrEqual(BOUNDS.top1);
      });
    }
  });
}
