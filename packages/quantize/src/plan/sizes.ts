// File size of a model under each preset, from its tensor table alone: llama-quantize's per-tensor
// rules (rules.ts) pick each tensor's type; bytes are ggml's row sizes plus GGUF alignment padding.
import { alignUp, ggmlTensorBytes, type ModelDescription } from '@qtk/core';
import { PRESETS, type PresetName } from '../presets.js';
import { chooseTensorTypes, type TensorChoice } from '../rules.js';

/** The presets `qtk plan` compares, largest first. */
export const PLAN_PRESETS = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_K_S', 'Q4_K_M', 'Q4_K_S', 'IQ4_XS', 'Q3_K_L', 'Q3_K_M', 'Q3_K_S', 'Q2_K'] as const satisfies readonly PresetName[];

/** GGUF data alignment (general.alignment default). */
const ALIGNMENT = 32;

export interface PresetSize {
  preset: PresetName;
  /** Tensor data, each tensor padded to the alignment. */
  tensorBytes: number;
  /** Header estimate + tensor data. */
  fileBytes: number;
  bitsPerWeight: number;
  choices: TensorChoice[];
}

export function ruleOptionsFor(d: ModelDescription) {
  const s = d.shape;
  return { blockCount: s.nLayer + s.nMtp, nGqa: s.nHeadKv > 0 ? Math.floor(s.nHead / s.nHeadKv) : 0 };
}

export function presetSize(d: ModelDescription, preset: PresetName, opts: { hasImatrix?: boolean } = {}): PresetSize {
  const { choices } = chooseTensorTypes(d.tensors, { preset, ...ruleOptionsFor(d), hasImatrix: opts.hasImatrix });
  const byName = new Map(d.tensors.map((t) => [t.name, t]));
  let bytes = 0, elements = 0;
  for (const c of choices) {
    const ne = byName.get(c.name)!.ne;
    bytes += alignUp(ggmlTensorBytes(c.type, ne), ALIGNMENT);
    elements += ne.reduce((a, b) => a * b, 1);
  }
  return { preset, tensorBytes: bytes, fileBytes: alignUp(d.headerBytes, ALIGNMENT) + bytes, bitsPerWeight: (bytes * 8) / elements, choices };
}

export function presetSizes(d: ModelDescription, presets: readonly PresetName[] = PLAN_PRESETS): PresetSize[] {
  return presets.map((p) => presetSize(d, p));
}

export { PRESETS };
