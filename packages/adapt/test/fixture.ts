// A tiny qwen3 model for adapt tests, as an f32 GGUF (the engine trains on f32 about twice as fast as on
// f16 on a CPU; the conversion stage has its own tests), with logits of moderate size so a random model
// starts near the uniform loss and a few LoRA steps on a real repository lower it; and that repository.
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { convertCheckpoint } from '@qtk/convert';
import { generateFixture } from '@qtk/fixtures';

export async function adaptFixtureGguf(dir: string): Promise<string> {
  const { dir: ckpt } = await generateFixture({ arch: 'qwen3', outDir: path.join(dir, 'ckpt'), layers: 2, hidden: 64, heads: 2, kvHeads: 1, headDim: 32, logitStd: 1, seed: 3 });
  return (await convertCheckpoint({ input: ckpt, output: path.join(dir, 'tiny-F32.gguf'), outtype: 'f32', log: () => {} })).output;
}

/** A real repository to learn from: the LoRA package's dataset builder sources. */
export const ADAPT_REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../lora/src/dataset');

/** A short run: six steps, a checkpoint every two, plain rounding to Q4_0, the base quantized alike. */
export const ADAPT_FLAGS = {
  vram: '1GiB', headroom: '0', ctx: '256', rank: '4', alpha: '8', seqLen: '128', steps: '6', batch: '1', gradAccum: '1', lr: '5e-2', warmup: '0',
  evalEvery: '0', saveEvery: '2', evalRows: '1', seed: '1', evalFraction: '0.25', method: 'rtn', type: 'Q4_0', evalCtx: '64', evalChunks: '2',
  threads: '2', baseline: true,
} as const;
