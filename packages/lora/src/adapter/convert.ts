// PEFT (HF module space) ⇄ GGUF LoRA (GGUF tensor space) through the module map: names, shapes, and the
// permutations convert applies to each base weight, carried to B's rows and A's columns.
import { fileError, permuteLoraA, permuteLoraB, QtkError, unpermuteLoraA, unpermuteLoraB, type LoraTarget } from '@qtk/core';
import type { AdapterBase } from './base.js';
import { mergeOnly } from './merge-only.js';
import type { LoraPair } from './types.js';

/** Layer index and the module path inside the block: `model.language_model.layers.3.linear_attn.in_proj_qkv` → [3, 'linear_attn.in_proj_qkv']. */
function blockModule(module: string): [number, string] | undefined {
  const m = /^(?:.*\.)?layers\.(\d+)\.(.+)$/.exec(module);
  return m ? [Number(m[1]), m[2]!] : undefined;
}

function targetIndex(base: AdapterBase): Map<string, LoraTarget> {
  return new Map(base.targets.map((t) => [`${t.layer}.${blockModule(t.module)![1]}`, t]));
}

/** Finds the map entry for a PEFT module and checks its shape; errors name the tensor and the base. */
export function targetFor(base: AdapterBase, index: Map<string, LoraTarget>, p: LoraPair, file: string): LoraTarget {
  const refused = mergeOnly(p.name);
  if (refused) {
    throw fileError(file, `${p.name}: llama.cpp cannot apply LoRA to ${refused} at run time`, 'Merge the adapter into the base instead (qtk lora merge, or PEFT merge_and_unload) and use the merged model');
  }
  const bm = blockModule(p.name);
  const t = bm && index.get(`${bm[0]}.${bm[1]}`);
  if (!t) {
    throw fileError(file, `${p.name} is not a LoRA target of the ${base.arch.modelType} base ${base.source} (${base.targets.length} targets, e.g. ${base.targets[0]?.module})`, 'Check that the adapter was trained for this base model');
  }
  if (t.inFeatures !== p.nIn || t.outFeatures !== p.nOut) {
    throw fileError(file, `${p.name}: lora_A is [${p.rank}, ${p.nIn}] and lora_B [${p.nOut}, ${p.rank}], but the base weight ${t.tensor} is [${t.outFeatures}, ${t.inFeatures}] (out, in)`, 'The adapter belongs to another model size: use its own base model');
  }
  const info = base.ggufTensors?.get(t.tensor);
  if (base.ggufTensors && !info) throw fileError(base.source, `has no tensor ${t.tensor}, which ${p.name} adapts`, 'Use the base GGUF the adapter was trained on (converted by qtk convert)');
  if (info && (info.ne[0] !== t.inFeatures || info.ne[1] !== t.outFeatures)) {
    throw fileError(base.source, `tensor ${t.tensor} has ne [${info.ne}], the module map expects [${t.inFeatures}, ${t.outFeatures}]`, 'The GGUF and its metadata disagree: convert the base again');
  }
  return t;
}

/** PEFT modules → GGUF pairs (named by base tensor), permuted as convert permutes the base weight. */
export function peftToGguf(base: AdapterBase, modules: readonly LoraPair[], file: string): LoraPair[] {
  const index = targetIndex(base);
  const seen = new Map<string, string>();
  return modules.map((p) => {
    const t = targetFor(base, index, p, file);
    const dup = seen.get(t.tensor);
    if (dup) throw fileError(file, `${p.name} and ${dup} both adapt ${t.tensor}`, 'Remove one of them from the adapter');
    seen.set(t.tensor, p.name);
    return { ...p, name: t.tensor, a: permuteLoraA(p.a, p.nIn, t.colPerm), b: permuteLoraB(p.b, p.rank, t.rowPerm) };
  });
}

/** GGUF pairs → PEFT modules named as the base's HF class names them, permutations undone. */
export function ggufToPeft(base: AdapterBase, pairs: readonly LoraPair[], file: string): LoraPair[] {
  const byTensor = new Map(base.targets.map((t) => [t.tensor, t]));
  return pairs.map((p) => {
    const t = byTensor.get(p.name);
    if (!t) throw fileError(file, `${p.name} is not a LoRA target of the ${base.arch.modelType} base ${base.source}`, 'Check that the adapter belongs to this base model');
    if (t.inFeatures !== p.nIn || t.outFeatures !== p.nOut) {
      throw fileError(file, `${p.name}: lora_a ne [${p.nIn}, ${p.rank}], lora_b ne [${p.rank}, ${p.nOut}] do not fit the base weight [${t.outFeatures}, ${t.inFeatures}]`, 'The adapter belongs to another model size: use its own base model');
    }
    return { ...p, name: t.module, a: unpermuteLoraA(p.a, p.nIn, t.colPerm), b: unpermuteLoraB(p.b, p.rank, t.rowPerm) };
  });
}

/** The GGUF adapter's general.architecture must be the base's. */
export function checkAdapterArch(file: string, adapterArch: string, base: AdapterBase): void {
  if (adapterArch !== base.arch.ggufArch) {
    throw new QtkError(`${file}: the adapter is for architecture ${adapterArch}, the base ${base.source} is ${base.arch.ggufArch}. Use the base model the adapter was made for.`, { file });
  }
}
