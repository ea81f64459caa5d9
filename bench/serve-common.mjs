// What bench/serve.mjs and bench/decode-loop.mjs share: the command line, the llama-server to compare
// with, and the default model (the qwen3_5 fixture, f16, hidden 512, 8 layers, real Qwen3 vocabulary).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importTs } from './serve-run-ts.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const args = process.argv.slice(2);

/** The value after `--name`, or the fallback. */
export const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};

/** Arguments that are neither flags nor a flag's value (`valued(flag)`: whether that flag takes one). */
export const positionals = (valued) => args.filter((a, i) => !a.startsWith('--') && !(i > 0 && valued(args[i - 1])));

/** llama-server built from the llama.cpp source node-llama-cpp bundles (LLAMA_SERVER overrides). */
export const llamaServerPath = () => process.env.LLAMA_SERVER ?? path.join(os.homedir(), '.cache/qtk-anchors/build/bin/llama-server');

export const FIXTURE_LABEL = 'qwen3_5 fixture (f16, hidden 512, 8 layers, real Qwen3 vocab)';

/** Writes the default fixture as an f16 GGUF into `dir` and returns its path. */
export async function fixtureGguf(dir) {
  const { generateFixture } = await importTs(path.join(root, 'packages/fixtures/src/index.ts'));
  const { convertCheckpoint } = await importTs(path.join(root, 'packages/convert/src/index.ts'));
  const { dir: hf } = await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf'), hidden: 512, layers: 8, dtype: 'f16' });
  const gguf = path.join(dir, 'qwen3_5-h512.gguf');
  await convertCheckpoint({ input: hf, output: gguf, outtype: 'f16', log: () => {} });
  await fs.rm(hf, { recursive: true, force: true });
  return gguf;
}
