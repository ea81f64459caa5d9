// general.* and architecture keys of the output GGUF, from the architecture's key table and the
// checkpoint's folder name, config.json and generation_config.json.
import * as path from 'node:path';
import { OUTTYPES, type ArchDefinition, type HParams, type JsonObject, type KeyValue, type MetadataEntry, type Outtype } from '@qtk/core';

export interface ModelNaming {
  name: string;
  basename: string;
  sizeLabel: string;
  finetune?: string;
}

/** llama.cpp's rounded parameter count notation: 27B, 0.6B, 135M … (gguf-py model_weight_count_rounded_notation). */
export function sizeLabelFromCount(n: number): string {
  const [scaled, suffix] = n > 1e12 ? [n * 1e-12, 'T'] : n > 1e9 ? [n * 1e-9, 'B'] : n > 1e6 ? [n * 1e-6, 'M'] : [n * 1e-3, 'K'];
  const digits = String(Math.round(scaled)).replace(/^0+/, '').length;
  return `${scaled.toFixed(Math.max(2 - digits, 0))}${suffix}`;
}

/**
 * The model id from config `_name_or_path` ("org/name") or the folder name, split like llama.cpp's
 * heuristics into basename, size label (e.g. "27B", else counted) and finetune ("Instruct", "FP8"…).
 */
export function modelNaming(dir: string, config: JsonObject, parameterCount: number): ModelNaming {
  const fromConfig = typeof config._name_or_path === 'string' && /^[\w.-]+\/[\w.-]+$/.test(config._name_or_path) ? config._name_or_path.split('/')[1]! : undefined;
  const id = fromConfig ?? path.basename(path.resolve(dir));
  const m = /^(.*?)-(\d+(?:\.\d+)?[KMBT])(?:-(.+))?$/i.exec(id);
  if (m && m[1]) {
    return { name: id.replaceAll('-', ' '), basename: m[1], sizeLabel: m[2]!.toUpperCase(), finetune: m[3] };
  }
  return { name: id, basename: id, sizeLabel: sizeLabelFromCount(parameterCount) };
}

/** `<basename>-<size>[-<finetune>]-<OUTTYPE>.gguf`, gguf-py's naming convention. */
export function defaultOutputName(n: ModelNaming, outtype: Outtype): string {
  const clean = (s: string) => s.trim().replace(/[ /]/g, '-');
  return [clean(n.basename), n.sizeLabel, ...(n.finetune ? [clean(n.finetune)] : []), OUTTYPES[outtype].ggml].join('-') + '.gguf';
}

/** Sampling defaults from generation_config.json (general.sampling.*), typed as llama.cpp reads them. */
export function samplingEntries(gen: JsonObject | undefined): MetadataEntry[] {
  if (!gen) return [];
  const out: MetadataEntry[] = [];
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const topK = num(gen.top_k);
  if (topK !== undefined && Number.isInteger(topK)) out.push({ key: 'general.sampling.top_k', type: 'INT32', value: topK });
  const f = (key: string, v: unknown) => { const x = num(v); if (x !== undefined) out.push({ key, type: 'FLOAT32', value: x }); };
  f('general.sampling.top_p', gen.top_p);
  f('general.sampling.temp', gen.temperature);
  f('general.sampling.min_p', gen.min_p);
  f('general.sampling.penalty_repeat', gen.penalty_repeat ?? gen.repetition_penalty);
  return out;
}

function entry(key: string, type: ArchDefinition['keys'][number]['type'], value: KeyValue): MetadataEntry {
  if (type === 'ARRAY_INT32') return { key, type: 'ARRAY', elemType: 'INT32', value: value as readonly number[] };
  if (type === 'BOOL') return { key, type, value: value as boolean };
  if (type === 'STRING') return { key, type, value: value as string };
  return { key, type, value: value as number };
}

export function architectureEntries(arch: ArchDefinition, h: HParams, nMtp: number): MetadataEntry[] {
  const out: MetadataEntry[] = [];
  for (const k of arch.keys) {
    const v = k.value(h, { nMtp });
    if (v !== undefined) out.push(entry(`${arch.ggufArch}.${k.key}`, k.type, v));
  }
  return out;
}

export function generalEntries(arch: ArchDefinition, naming: ModelNaming, gen: JsonObject | undefined): MetadataEntry[] {
  const out: MetadataEntry[] = [
    { key: 'general.architecture', type: 'STRING', value: arch.ggufArch },
    { key: 'general.type', type: 'STRING', value: 'model' },
    ...samplingEntries(gen),
    { key: 'general.name', type: 'STRING', value: naming.name },
    { key: 'general.basename', type: 'STRING', value: naming.basename },
  ];
  if (naming.finetune) out.push({ key: 'general.finetune', type: 'STRING', value: naming.finetune });
  out.push({ key: 'general.size_label', type: 'STRING', value: naming.sizeLabel });
  return out;
}

export function fileTypeEntries(outtype: Outtype): MetadataEntry[] {
  return [
    { key: 'general.file_type', type: 'UINT32', value: OUTTYPES[outtype].fileType },
    { key: 'general.quantization_version', type: 'UINT32', value: 2 },
  ];
}

