// Any adapter (a PEFT folder or a GGUF LoRA file) as GGUF-space pairs for one base model.
import { promises as fs } from 'node:fs';
import { fileError, readGgufLora } from '@qtk/core';
import type { AdapterBase } from './base.js';
import { checkAdapterArch, peftToGguf } from './convert.js';

import { readPeftAdapter } from './peft.js';
import type { LoraPair } from './types.js';

export async function loadAdapterForBase(source: string, base: AdapterBase): Promise<LoraPair[]> {
  const stat = await fs.stat(source).catch((e: Error) => {
    throw fileError(source, `cannot be read (${e.message})`, 'Pass a PEFT adapter folder or a GGUF LoRA file');
  });
  if (stat.isDirectory()) {
    const peft = await readPeftAdapter(source);
    return peftToGguf(base, peft.modules, source);
  }
  const g = await readGgufLora(source);
  checkAdapterArch(source, g.arch, base);
  const byTensor = new Map(base.targets.map((t) => [t.tensor, t]));
  for (const p of g.pairs) {
    const info = base.ggufTensors?.get(p.name);
    const t = byTensor.get(p.name);
    if (base.ggufTensors && !info) throw fileError(base.source, `has no tensor ${p.name}, which the adapter ${source} adapts`, 'Use the base GGUF the adapter was made for');
    const ne = info?.ne ?? (t ? [t.inFeatures, t.outFeatures] : undefined);
    if (ne && (ne[0] !== p.nIn || ne[1] !== p.nOut)) {
      throw fileError(source, `${p.name}.lora_a ne [${p.nIn}, ${p.rank}] / .lora_b ne [${p.rank}, ${p.nOut}] do not fit the base tensor ne [${ne}]`, 'The adapter belongs to another model size: use its own base model');
    }
  }
  return [...g.pairs];
}
