// The trained adapter in both formats: adapter/ (PEFT, HF module names and layouts) and adapter.gguf
// (llama.cpp LoRA, GGUF tensor names, permuted as convert permuted the base weights).
import * as path from 'node:path';
import { writeGgufLora } from '@qtk/core';
import { openAdapterBase } from '../adapter/base.js';
import { peftToGguf } from '../adapter/convert.js';
import { peftConfigFor, writePeftAdapter } from '../adapter/peft.js';
import type { LoraPair } from '../adapter/types.js';
import type { LoraParam } from './model.js';
import { RUN_FILES } from './run-files.js';

export interface AdapterMeta {
  arch: string;
  model: string;
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
}

export async function writeAdapters(runDir: string, params: readonly LoraParam[], meta: AdapterMeta): Promise<{ peftDir: string; gguf: string }> {
  const scale = meta.rslora ? meta.alpha / Math.sqrt(meta.rank) : meta.alpha / meta.rank;
  const pairs: LoraPair[] = params.map((p) => ({ name: p.module, rank: meta.rank, nIn: p.shapeA[1], nOut: p.shapeB[0], a: p.a, b: p.b, scale }));
  const peftDir = path.join(runDir, RUN_FILES.peftDir);
  const gguf = path.join(runDir, RUN_FILES.gguf);
  const config = peftConfigFor(pairs, { baseModel: path.basename(meta.model), rslora: meta.rslora, extra: { lora_dropout: meta.dropout } });
  await writePeftAdapter(peftDir, config, pairs, { overwrite: true });
  const base = await openAdapterBase(meta.model);
  await writeGgufLora(gguf, meta.arch, peftToGguf(base, pairs, peftDir), { overwrite: true, name: `${path.basename(meta.model, '.gguf')} LoRA r${meta.rank}` });
  return { peftDir, gguf };
}
