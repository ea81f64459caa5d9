// The reference forward against an external oracle: llama.cpp (node-llama-cpp 3.21.1, CPU) on f32 GGUFs
// that @qtk/convert makes from the same fixtures. Two independent readings of the model math must agree.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '@qtk/convert';
import { generateFixture, type FixtureOptions } from '@qtk/fixtures';
import { referenceForward } from '../src/index.js';
import { llamaLogProbs, logSoftmax } from '@qtk/fixtures/llama-oracle';

const ids = [9707, 11, 1879, 0, 576, 374, 264, 1273, 315, 279, 5785, 4637, 13, 151645, 198, 151644, 872, 198, 3838, 374, 220, 17, 10, 17];

// Measured: max |Δ log p| 0.017-0.025 (qwen3: llama.cpp keeps K/V in f16 in every layer), 0.003 (qwen3_5,
// FP8 qwen3_5: only 2 of 8 layers have a KV cache), top-1 equal at every position that is not a near-tie.
const MAX_DLOGP = 0.1;
/** Positions whose reference top-1 leads by less than this are genuine near-ties. */
const NEAR_TIE = 0.05;

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-reference-llama-'));
});
afterAll(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

const cases: [string, Omit<FixtureOptions, 'outDir'>][] = [
  ['qwen3', { arch: 'qwen3', seed: 0 }],
  ['qwen3_5', { arch: 'qwen3_5', seed: 0 }],
  ['qwen3_5 FP8', { arch: 'qwen3_5', seed: 0, fp8: true }],
];

describe('reference forward vs llama.cpp on the converted f32 GGUF', () => {
  for (const [label, opts] of cases) {
    it(label, async () => {
      const dir = path.join(root, label.replace(/ /g, '_'));
      await generateFixture({ ...opts, outDir: dir });
      const gguf = `${dir}.gguf`;
      await convertCheckpoint({ input: dir, output: gguf, outtype: 'f32', log: () => {} });
      const ref = await referenceForward(dir, ids);
      const V = ref.vocab;
      const mine = logSoftmax(ref.logits, V);
      const theirs = await llamaLogProbs(gguf, ids, V);
      let maxD = 0;
      let checked = 0;
      for (let t = 0; t < ids.length; t++) {
        let top = 0;
        for (let i = 0; i < V; i++) {
          if (mine[t * V + i]! > -9.2) maxD = Math.max(maxD, Math.abs(mine[t * V + i]! - theirs[t * V + i]!)); // p > 1e-4
          if (theirs[t * V + i]! > theirs[t * V + top]!) top = i;
        }
        let a = 0, b = -1; // reference top-1 and top-2
        for (let i = 1; i < V; i++) {
          const lp = mine[t * V + i]!;
          if (lp > mine[t * V + a]!) [b, a] = [a, i];
          else if (b < 0 || lp > mine[t * V + b]!) b = i;
        }
        if (mine[t * V + a]! - mine[t * V + b]! < NEAR_TIE) continue;
        checked++;
        expect(top, `top-1 at position ${t}`).toBe(a);
      }
      console.log(`${label}: max |Δ log p| ${maxD.toFixed(4)} (p > 1e-4), top-1 equal at ${checked}/${ids.length} (others near-ties)`);
      expect(maxD).toBeLessThan(MAX_DLOGP);
      expect(checked).toBeGreaterThanOrEqual(ids.length - 3);
    });
  }
});
