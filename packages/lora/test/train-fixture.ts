// A tiny qwen3 GGUF for training tests: logits of moderate size (a random model then starts near the
// uniform loss, ln V) and f32 weights, so llama.cpp and the engine compute the same function.
import * as path from 'node:path';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';

export async function trainFixtureGguf(dir: string, opts: { layers?: number; hidden?: number } = {}): Promise<string> {
  const hidden = opts.hidden ?? 64;
  const { dir: ckpt } = await generateFixture({ arch: 'qwen3', outDir: path.join(dir, 'ckpt'), layers: opts.layers ?? 2, hidden, heads: 2, kvHeads: 1, headDim: 32, logitStd: 1, seed: 3 });
  return (await convertCheckpoint({ input: ckpt, output: path.join(dir, 'tiny.gguf'), outtype: 'f32', log: () => {} })).output;
}

/** A real repository to learn from: this package's dataset builder sources. */
export const TRAIN_REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../src/dataset');
