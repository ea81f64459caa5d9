// The base model an adapter belongs to, from a Hugging Face folder (config.json) or a GGUF: its
// architecture, its hyper-parameters and the LoRA targets the module map derives from them.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileError, GgufReader, hparamsFromGguf, loraArchitecture, loraTargets, resolveArchitecture, type ArchDefinition, type GgufTensorInfo, type HParams, type LoraTarget } from '@qtk/core';

export interface AdapterBase {
  readonly source: string;
  readonly arch: ArchDefinition;
  readonly hparams: HParams;
  /** Every adaptable linear of the trunk (module map order). */
  readonly targets: readonly LoraTarget[];
  /** GGUF tensor infos when the base is a GGUF (checked against adapters), else undefined. */
  readonly ggufTensors?: ReadonlyMap<string, GgufTensorInfo>;
}

export async function openAdapterBase(source: string, opts: { hfArchitecture?: string } = {}): Promise<AdapterBase> {
  const stat = await fs.stat(source).catch((e: Error) => {
    throw fileError(source, `cannot be read (${e.message})`, 'Pass the base model: a Hugging Face folder or a .gguf file');
  });
  if (stat.isDirectory()) {
    const file = path.join(source, 'config.json');
    const text = await fs.readFile(file, 'utf8').catch((e: Error) => {
      throw fileError(file, `cannot be read (${e.message})`, 'Pass the folder of a Hugging Face checkpoint (config.json beside the safetensors)');
    });
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      throw fileError(file, `is not valid JSON (${(e as Error).message})`, 'Restore config.json from the model repository', e);
    }
    const { arch, hparams, hfArchitecture } = resolveArchitecture(config, file);
    return { source, arch, hparams, targets: loraTargets(arch, hparams, { hfArchitecture: opts.hfArchitecture ?? hfArchitecture }) };
  }
  const r = await GgufReader.open(source);
  try {
    const hparams = hparamsFromGguf((k) => r.get(k), source);
    const arch = loraArchitecture(String(r.get('general.architecture')));
    return { source, arch, hparams, targets: loraTargets(arch, hparams, { hfArchitecture: opts.hfArchitecture }), ggufTensors: new Map(r.tensors.map((t) => [t.name, t])) };
  } finally {
    await r.close();
  }
}
