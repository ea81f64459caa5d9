// `quantize --method gptq` end to end on a converted qwen3_5 fixture: calibration through the engine, GPTQ
// rounding under llama-quantize's Q4_K_M types. The file has the same tensor types (and size) as plain
// Q4_K_M, and llama.cpp (node-llama-cpp) loads it and predicts close to the f16 model.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { getLlama, type Token } from 'node-llama-cpp';
import { quantizeGguf } from '../src/quantize-gguf.js';
import { quantizeGptq } from '../src/gptq/quantize-gptq.js';

const CALIB = 'The quick brown fox jumps over the lazy dog. In 1905, Einstein published four papers that changed physics. '.repeat(20);
const TEXT = 'Water boils at one hundred degrees Celsius at sea level, and freezes at zero.';
let dir: string;
let f16: string, gptq: string, rtn: string;

async function lastLogProbs(file: string): Promise<Map<number, number>[]> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model = await llama.loadModel({ modelPath: file });
  try {
    const ctx = await model.createContext({ contextSize: 128, threads: 2 });
    try {
      const tokens = [...model.tokenize(TEXT, true)];
      const res = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t as Token, { generateNext: { probabilities: true } }]));
      return res.map((r) => new Map([...r!.next!.probabilities!].map(([t, p]) => [t, Math.log(p)])));
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

async function types(file: string): Promise<string[]> {
  const r = await GgufReader.open(file);
  try { return r.tensors.map((t) => `${t.name} ${t.type}`); } finally { await r.close(); }
}

describe('quantize --method gptq', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-gptq-gguf-'));
    const fx = await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf'), seed: 3, layers: 4, hidden: 256, heads: 4, kvHeads: 2, headDim: 64 });
    f16 = path.join(dir, 'fx-F16.gguf');
    await convertCheckpoint({ input: fx.dir, output: f16, outtype: 'f16', log: () => {} });
    await writeFile(path.join(dir, 'calib.txt'), CALIB);
    gptq = path.join(dir, 'fx-gptq.gguf');
    rtn = path.join(dir, 'fx-rtn.gguf');
    // output.weight (152k rows) keeps plain rounding here: its calibration pass computes every logit
    await quantizeGptq({ input: f16, output: gptq, preset: 'Q4_K_M', calib: path.join(dir, 'calib.txt'), tokens: 512, ctx: 128, calibOutput: false, threads: 2, log: () => {} });
    await quantizeGguf({ input: f16, output: rtn, preset: 'Q4_K_M', threads: 2, log: () => {} });
  }, 1_200_000); // ≈ 1 min of CPU; far longer on a machine shared with other jobs
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('keeps llama-quantize\'s Q4_K_M tensor types', async () => {
    expect(await types(gptq)).toEqual(await types(rtn));
  });

  it('loads in llama.cpp and predicts close to f16', async () => {
    const ref = await lastLogProbs(f16);
    const got = await lastLogProbs(gptq);
    let kld = 0, agree = 0;
    for (let i = 0; i < ref.length; i++) {
      let best = -1, bestV = -Infinity, bestQ = -1, bestQV = -Infinity;
      for (const [t, lr] of ref[i]!) {
        kld += Math.exp(lr) * (lr - (got[i]!.get(t) ?? Math.log(1e-45)));
        if (lr > bestV) { bestV = lr; best = t; }
      }
      for (const [t, lq] of got[i]!) if (lq > bestQV) { bestQV = lq; bestQ = t; }
      if (best === bestQ) agree++;
    }
    // The random fixture's plain Q4_K_M measures ≈ 0.4 nats here (llama-kld.test.ts); a broken layout gives several.
    expect(kld / ref.length).toBeLessThan(1);
    expect(agree / ref.length).toBeGreaterThanOrEqual(0.3);
  }, 600_000);
});
