// Test helper: a tiny seeded Qwen3 checkpoint (real Qwen3 tokenizer and chat template) converted to GGUF.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { convertCheckpoint } from '@qtk/convert';
import { generateFixture } from '@qtk/fixtures';

export interface TinyModel {
  dir: string;
  gguf: string;
  cleanup: () => Promise<void>;
}

export async function buildTinyModel(arch: 'qwen3' | 'qwen3_5' = 'qwen3'): Promise<TinyModel> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-serve-'));
  const { dir: hf } = await generateFixture({ arch, outDir: path.join(dir, 'hf') });
  const gguf = path.join(dir, `tiny-${arch}.gguf`);
  await convertCheckpoint({ input: hf, output: gguf, outtype: 'f32', log: () => {} });
  await fs.rm(hf, { recursive: true, force: true });
  return { dir, gguf, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}
