// What the planner needs to know about the base model, from a Hugging Face folder, its config.json or a
// GGUF header alone: the memory model's description (tensor table, shapes) and the LoRA target table.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import {
  GgufReader, QtkError, describeConfig, describeGguf, fileError, hparamsFromGguf, loraTargets, resolveArchitecture,
  type HParams, type JsonObject, type LoraTarget, type ModelDescription,
} from '@qtk/core';

export type ModelInputKind = 'hf' | 'config' | 'gguf';

export interface BaseModel {
  input: string;
  kind: ModelInputKind;
  /** As `qtk convert --outtype f16` writes it (for a GGUF: the file's own tensor table). */
  description: ModelDescription;
  arch: string;
  hparams: HParams;
  /** Every LoRA target of the default `--targets all`. */
  targets: LoraTarget[];
  /** The float type LoRA trains on without quantizing: F16 after conversion, a GGUF's own matrix type. */
  floatType: string;
}

async function readConfig(file: string): Promise<JsonObject> {
  const text = await fs.readFile(file, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw fileError(file, e.code === 'ENOENT' ? 'no config.json here' : `cannot be read (${e.message})`, 'Pass a Hugging Face model folder (config.json, *.safetensors, tokenizer.json) or a .gguf');
  });
  try {
    const v = JSON.parse(text) as unknown;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
    return v as JsonObject;
  } catch (e) {
    throw fileError(file, `is not a model config (${(e as Error).message})`, 'Re-download config.json from the model repository');
  }
}

export async function describeBase(input: string): Promise<BaseModel> {
  const st = await fs.stat(input).catch(() => undefined);
  if (!st) throw new QtkError(`${input}: no such file or folder. Pass a Hugging Face model folder or a .gguf file`, { file: input });
  if (st.isDirectory() || input.toLowerCase().endsWith('.json')) {
    const file = st.isDirectory() ? path.join(input, 'config.json') : input;
    const config = await readConfig(file);
    const { arch, hparams } = resolveArchitecture(config, file);
    const description = describeConfig(config, file, { outtype: 'f16' });
    return { input, kind: st.isDirectory() ? 'hf' : 'config', description, arch: arch.ggufArch, hparams, targets: loraTargets(arch.ggufArch, hparams), floatType: 'F16' };
  }
  const r = await GgufReader.open(input);
  try {
    const description = describeGguf(input, r, r.tensors, r.dataOffset);
    const hparams = hparamsFromGguf((k) => r.get(k), input);
    const arch = String(r.get('general.architecture'));
    const matrix = r.tensors.find((t) => t.name.endsWith('.weight') && t.ne.length === 2 && t.name.startsWith('blk.'));
    return { input, kind: 'gguf', description, arch, hparams, targets: loraTargets(arch, hparams), floatType: matrix?.type ?? 'F16' };
  } finally {
    await r.close();
  }
}
