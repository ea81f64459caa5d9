// A model description from what the user has: a Hugging Face folder, its config.json, or a GGUF
// (header only: no tensor data is read).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GgufReader, QtkError, describeConfig, describeGguf, fileError, type ModelDescription } from '@qtk/core';

export async function loadModelDescription(input: string): Promise<ModelDescription> {
  const st = await fs.stat(input).catch(() => undefined);
  if (!st) throw new QtkError(`${input}: no such file or folder. Pass a Hugging Face model folder, its config.json or a .gguf file`, { file: input });
  if (st.isDirectory()) return fromConfigFile(path.join(input, 'config.json'));
  if (input.toLowerCase().endsWith('.json')) return fromConfigFile(input);
  const reader = await GgufReader.open(input);
  try {
    return describeGguf(input, reader, reader.tensors, reader.dataOffset);
  } finally {
    await reader.close();
  }
}

async function fromConfigFile(file: string): Promise<ModelDescription> {
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw fileError(file, e.code === 'ENOENT' ? 'no config.json here' : `cannot read (${e.message})`, 'Pass a Hugging Face model folder that holds config.json, the config.json itself or a .gguf file');
  });
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (e) {
    throw fileError(file, `is not valid JSON (${(e as Error).message})`, 'Re-download config.json from the model repository');
  }
  if (typeof config !== 'object' || config === null || Array.isArray(config)) throw fileError(file, 'is not a JSON object', 'Re-download config.json from the model repository');
  return describeConfig(config as Record<string, unknown>, file);
}
