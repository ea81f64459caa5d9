// A tiny qwen3 Hugging Face checkpoint for adapt tests (logits of moderate size, so a random model starts
// near the uniform loss and a few LoRA steps on a real repository lower it), and that repository.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFixture } from '@qtk/fixtures';

export async function adaptFixture(dir: string): Promise<string> {
  const { dir: ckpt } = await generateFixture({ arch: 'qwen3', outDir: dir, layers: 2, hidden: 64, heads: 2, kvHeads: 1, headDim: 32, logitStd: 1, seed: 3 });
  return ckpt;
}

/** A real repository to learn from: the LoRA package's dataset builder sources. */
export const ADAPT_REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lora/src/dataset');

/** Flags of a short run: a few steps, a checkpoint every two, Q8_0 ruled out by the budget. */
export const ADAPT_FLAGS = {
  vram: '1GiB', headroom: '0', ctx: '256', rank: '4', alpha: '8', seqLen: '128', steps: '6', batch: '1', gradAccum: '2', lr: '2e-2', warmup: '0',
  evalEvery: '0', saveEvery: '2', evalRows: '2', seed: '1', evalFraction: '0.25', method: 'rtn', type: 'Q4_0', evalCtx: '64', evalChunks: '8',
  threads: '2', baseline: true,
} as const;
