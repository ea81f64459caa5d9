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

/** `chatTemplate` replaces the fixture's (Qwen3) template before conversion, as a checkpoint of another family would ship. */
export async function buildTinyModel(arch: 'qwen3' | 'qwen3_5' = 'qwen3', opts: { chatTemplate?: string } = {}): Promise<TinyModel> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-serve-'));
  const { dir: hf } = await generateFixture({ arch, outDir: path.join(dir, 'hf') });
  if (opts.chatTemplate !== undefined) {
    const configPath = path.join(hf, 'tokenizer_config.json');
    const config = JSON.parse(await fs.readFile(configPath, 'utf8')) as Record<string, unknown>;
    if ('chat_template' in config) await fs.writeFile(configPath, JSON.stringify({ ...config, chat_template: opts.chatTemplate }));
    await fs.writeFile(path.join(hf, 'chat_template.jinja'), opts.chatTemplate);
  }
  const gguf = path.join(dir, `tiny-${arch}.gguf`);
  await convertCheckpoint({ input: hf, output: gguf, outtype: 'f32', log: () => {} });
  await fs.rm(hf, { recursive: true, force: true });
  return { dir, gguf, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}
