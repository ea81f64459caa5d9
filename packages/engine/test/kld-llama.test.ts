// `qtk eval kld` against llama.cpp's own probabilities (node-llama-cpp), over windows built here from
// llama-perplexity's rules and not from the engine's windowing: tools/perplexity/perplexity.cpp
// (kl_divergence) cuts the tokens into floor(n / n_ctx) chunks, puts BOS first in each when the
// vocabulary adds one, evaluates each from an empty state and scores positions n_ctx/2 .. n_ctx−2
// (the logits at position j against the distribution of token j+1). Mean KL(base ‖ model) is summed
// here in float64.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { GgufReader } from '@qtk/core';
import { evalKldMain } from '../src/index.js';
import { fixtureGguf, requantizeGguf, type FixtureGguf } from './helpers.js';
import { cpuLlama, llamaWindowLogProbs } from '@qtk/fixtures/llama-oracle';

const TEXT = Array.from({ length: 1 }, (_, i) =>
  `Paragraph ${i + 1}. The quantization toolkit converts a checkpoint, measures its perplexity on held-out text and ` +
  `keeps the rows that matter most at higher precision; test number ${i * 7 + 3} checks that windows of ${16 << (i % 3)} tokens agree.`,
).join('\n');
const N_CTX = 16;
// Relative tolerance on the mean and max KLD. Same windows, weights and ggml kernels (f32 KV cache, no
// flash attention in llama.cpp), so what is left is node-llama-cpp renormalising without the control
// tokens (≈ 1e-4 of the mass; the measured gap is 9.4e-5 relative) and f32 rounding (≈ 1e-6). A window
// that starts one token late or scored positions one off move the mean by 15–21 % here.
const TOL = 1e-3;

/** llama-perplexity's chunks, from node-llama-cpp's tokenizer. */
async function perplexityChunks(gguf: string, text: string, nCtx: number, offset = 0): Promise<number[][]> {
  const l = await cpuLlama();
  const model = await l.loadModel({ modelPath: gguf, vocabOnly: true });
  try {
    const bos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? Number(model.tokens.bos) : undefined;
    const tokens = [...(bos !== undefined ? [bos] : []), ...model.tokenize(text, false).map(Number)].slice(offset);
    return Array.from({ length: Math.floor(tokens.length / nCtx) }, (_, c) => {
      const w = tokens.slice(c * nCtx, (c + 1) * nCtx);
      if (bos !== undefined) w[0] = bos;
      return w;
    });
  } finally {
    await model.dispose();
  }
}

/**
 * Mean over rows of KL(p ‖ q), from log-prob rows in float64. node-llama-cpp leaves a few control tokens
 * out of its probabilities and renormalises over the rest; both rows have the same support.
 */
function meanKl(p: Float32Array[], q: Float32Array[], rows: (w: number) => number[], nVocab: number): { mean: number; max: number; count: number } {
  let sum = 0, max = 0, count = 0;
  p.forEach((pw, w) => {
    for (const r of rows(w)) {
      let kl = 0;
      for (let i = r * nVocab; i < (r + 1) * nVocab; i++) {
        const lp = pw[i]!;
        if (lp === -Infinity) continue;
        kl += Math.exp(lp) * (lp - q[w]![i]!);
      }
      sum += kl;
      max = Math.max(max, kl);
      count++;
    }
  });
  return { mean: sum / count, max, count };
}

describe('eval kld equals the KLD of llama.cpp\'s probabilities over llama-perplexity\'s windows', () => {
  let f: FixtureGguf;
  let data: string;
  let q4k: string;
  let nVocab: number;
  beforeAll(async () => {
    // hidden 256: whole Q4_K blocks in every matrix row, so the quantized model differs measurably
    f = await fixtureGguf({ arch: 'qwen3_5', layers: 4, hidden: 256, heads: 4, kvHeads: 2, headDim: 64, seed: 5 }, 'f32');
    data = path.join(path.dirname(f.gguf), 'text.txt');
    writeFileSync(data, TEXT);
    q4k = path.join(path.dirname(f.gguf), 'model-Q4_K.gguf');
    await requantizeGguf(f.gguf, q4k, 'Q4_K');
    const r = await GgufReader.open(f.gguf);
    nVocab = r.tensor('token_embd.weight').ne[1]!;
    await r.close();
  }, 300_000);
  afterAll(() => f?.cleanup());

  it('mean KLD of Q4_K against f32', async () => {
    const lines: string[] = [];
    const got = await evalKldMain({ base: f.gguf, model: q4k, data, ctx: N_CTX, threads: 1, device: 'cpu', out: (l) => lines.push(l) });

    const first = N_CTX / 2;
    // rows for positions first−1 .. n_ctx−1, so that the scored range shifted by one either way is at hand
    const positions = Array.from({ length: N_CTX - first + 1 }, (_, k) => first - 1 + k);
    const windows = await perplexityChunks(f.gguf, TEXT, N_CTX);
    const opts = { exactKv: true, threads: 1 };
    const p = await llamaWindowLogProbs(f.gguf, windows, positions, nVocab, opts);
    const q = await llamaWindowLogProbs(q4k, windows, positions, nVocab, opts);
    const scored = Array.from({ length: N_CTX - 1 - first }, (_, k) => k + 1); // positions first .. n_ctx−2
    const want = meanKl(p, q, () => scored, nVocab);
    const early = meanKl(p, q, () => scored.map((k) => k - 1), nVocab);
    const late = meanKl(p, q, () => scored.map((k) => k + 1), nVocab);
    const shifted = await perplexityChunks(f.gguf, TEXT, N_CTX, 1);
    const sp = await llamaWindowLogProbs(f.gguf, shifted, positions, nVocab, opts);
    const sq = await llamaWindowLogProbs(q4k, shifted, positions, nVocab, opts);
    const moved = meanKl(sp, sq, () => scored, nVocab);

    const rel = (x: number) => Math.abs(x - want.mean) / want.mean;
    console.log(`qtk mean KLD ${got.meanKld.toExponential(6)} over ${got.count} tokens; llama.cpp ${want.mean.toExponential(6)} over ${want.count} (relative ${rel(got.meanKld).toExponential(2)}); max ${got.maxKld.toExponential(6)} vs ${want.max.toExponential(6)}; ` +
      `positions one earlier ${early.mean.toExponential(4)} (${rel(early.mean).toExponential(2)}), one later ${late.mean.toExponential(4)} (${rel(late.mean).toExponential(2)}), chunks from token 1 ${moved.mean.toExponential(4)} (${rel(moved.mean).toExponential(2)})`);
    expect(got.count).toBe(want.count);
    expect(rel(got.meanKld)).toBeLessThan(TOL);
    expect(Math.abs(got.maxKld - want.max) / want.max).toBeLessThan(TOL);
    // the comparison tells a window or a scored position off by one from the right ones
    expect(rel(early.mean)).toBeGreaterThan(4 * TOL);
    expect(rel(late.mean)).toBeGreaterThan(4 * TOL);
    expect(rel(moved.mean)).toBeGreaterThan(4 * TOL);
  }, 300_000);
});
