// `qtk plan`: for each preset, the file size and the memory llama.cpp needs to serve it with every
// layer on the GPU at the requested context, whether that fits the card, and the best preset that does.
import { ggmlTensorBytes, servingMemory, type KvType, type ModelDescription, type ServingMemory } from '@qtk/core';
import type { PresetName } from '../presets.js';
import { PLAN_PRESETS, presetSize } from './sizes.js';
import { planTraining, type TrainingOptions, type TrainingPlan } from './training.js';

export interface PlanOptions {
  /** Bytes of GPU memory. */
  vram: number;
  ctx: number;
  parallel: number;
  kvType: KvType;
  /** Bytes left free for the driver, CUDA context and fragmentation (llama.cpp's --fit keeps 1 GiB). */
  headroom: number;
  /** Also plan a LoRA training step at this sequence length and rank. */
  train?: TrainingOptions;
}

export interface PlanRow {
  preset: PresetName;
  fileBytes: number;
  bitsPerWeight: number;
  /** Memory on the GPU: weights except the token embedding, KV cache, recurrent state, compute buffer. */
  vramBytes: number;
  /** Host memory llama.cpp keeps beside it: the token embedding (an input layer stays on the CPU) and the logits. */
  hostBytes: number;
  serving: ServingMemory;
  fits: boolean;
  /** vram − headroom − vramBytes (negative when it does not fit). */
  spareBytes: number;
}

export interface Plan {
  model: ModelDescription;
  options: PlanOptions;
  rows: PlanRow[];
  /** The largest (least quantized) preset that fits, if any. */
  recommended?: PresetName;
  training?: TrainingPlan;
}

/** The token embedding is an input layer: llama.cpp loads it into host memory whatever -ngl is. */
const HOST_TENSORS = new Set(['token_embd.weight']);

export function planModel(model: ModelDescription, options: PlanOptions, presets: readonly PresetName[] = PLAN_PRESETS): Plan {
  const byName = new Map(model.tensors.map((t) => [t.name, t]));
  const rows = presets.map((preset): PlanRow => {
    const size = presetSize(model, preset);
    let hostWeights = 0;
    for (const c of size.choices) {
      if (!HOST_TENSORS.has(c.name)) continue;
      hostWeights += ggmlTensorBytes(c.type, byName.get(c.name)!.ne);
    }
    const serving = servingMemory(model.shape, size.tensorBytes, options);
    const vramBytes = serving.total - serving.output - hostWeights;
    const spareBytes = options.vram - options.headroom - vramBytes;
    return {
      preset, fileBytes: size.fileBytes, bitsPerWeight: size.bitsPerWeight, vramBytes, hostBytes: hostWeights + serving.output,
      serving, fits: spareBytes >= 0, spareBytes,
    };
  }).sort((a, b) => b.fileBytes - a.fileBytes);
  const training = options.train ? planTraining(model, { ...options.train, vram: options.vram, headroom: options.headroom }) : undefined;
  return { model, options, rows, recommended: rows.find((r) => r.fits)?.preset, ...(training ? { training } : {}) };
}
