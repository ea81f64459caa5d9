// Reads the tokenizer files of a Hugging Face checkpoint folder; errors name the file and what to do.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileError } from '../errors.js';
import { isObject, type JsonObject } from '../arch/hparams.js';
import type { TokenizerSources } from './vocab.js';

export async function readJsonFile(file: string, what: string): Promise<JsonObject> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    throw fileError(file, missing ? `${what} is missing` : `cannot read ${what} (${(e as Error).message})`,
      missing ? 'Download the complete model repository (config.json, tokenizer.json, tokenizer_config.json and all *.safetensors)' : 'Check the file permissions', e);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw fileError(file, `${what} is not valid JSON (${(e as Error).message})`, 'Re-download the file', e);
  }
  if (!isObject(v)) throw fileError(file, `${what} is not a JSON object`, 'Re-download the file');
  return v;
}

async function readOptional(file: string): Promise<string | undefined> {
  return fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    if (e.code === 'ENOENT') return undefined;
    throw fileError(file, `cannot read (${e.message})`, 'Check the file permissions', e);
  });
}

/** tokenizer.json (required), tokenizer_config.json, chat_template.jinja / .json (optional). */
export async function readTokenizerSources(dir: string, config: JsonObject, vocabSize: number): Promise<TokenizerSources> {
  const tokenizerJsonPath = path.join(dir, 'tokenizer.json');
  const tokenizerJson = await readJsonFile(tokenizerJsonPath, 'the tokenizer (tokenizer.json)');
  const tokenizerConfigPath = path.join(dir, 'tokenizer_config.json');
  const hasConfig = (await readOptional(tokenizerConfigPath)) !== undefined;
  const tokenizerConfig = hasConfig ? await readJsonFile(tokenizerConfigPath, 'tokenizer_config.json') : undefined;
  const chatTemplateJinja = await readOptional(path.join(dir, 'chat_template.jinja'));
  const ctJsonText = chatTemplateJinja === undefined ? await readOptional(path.join(dir, 'chat_template.json')) : undefined;
  let chatTemplateJson: unknown;
  if (ctJsonText !== undefined) {
    const parsed = await readJsonFile(path.join(dir, 'chat_template.json'), 'chat_template.json');
    chatTemplateJson = parsed.chat_template;
  }
  return { tokenizerJson, tokenizerJsonPath, tokenizerConfig, tokenizerConfigPath, chatTemplateJinja, chatTemplateJson, config, vocabSize };
}
