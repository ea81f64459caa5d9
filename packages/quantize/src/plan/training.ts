// `qtk plan --train`: the memory of one LoRA training step on qtk's engine with the base weights in
// bf16 (LoRA) or in a preset's types (QLoRA), from the same formula `qtk lora train --plan` prints
// (@qtk/core's trainingMemoryFor), and whether it fits the card.
import { ggmlTensorBytes, loraParamCount, trainingMemoryFor, type ModelDescription, type TrainingMemory } from '@qtk/core';
import type { PresetName } from '../presets.js';
import { presetSize } from './sizes.js';

/** Base precisions the training table compares: bf16 LoRA, then QLoRA on the usual presets. */
export const TRAIN_BASES = ['BF16', 'Q8_0', 'Q5_K_M', 'Q4_K_M'] as const;
export type TrainBase = 'BF16' | PresetName;

export interface TrainingOptions {
  seqLen: number;
  rank: number;
}

export interface TrainingRow {
  base: TrainBase;
  memory: TrainingMemory;
  fits: boolean;
  spareBytes: number;
}

export interface TrainingPlan {
  seqLen: number;
  rank: number;
  /** Trainable parameters of `--targets all` at this rank. */
  loraParams: number;
  rows: TrainingRow[];
  /** The least quantized base whose training step fits, if any. */
  recommended?: TrainBase;
}

/** Bytes of the weights as `qtk convert --outtype bf16` stores them (F32 tensors stay F32). */
export function bf16WeightBytes(d: ModelDescription): number {
  return d.tensors.reduce((a, t) => a + ggmlTensorBytes(t.type === 'F32' ? 'F32' : 'BF16', t.ne), 0);
}

export function planTraining(d: ModelDescription, o: TrainingOptions & { vram: number; headroom: number }, bases: readonly TrainBase[] = TRAIN_BASES): TrainingPlan {
  const loraParams = loraParamCount(d, o.rank);
  const rows = bases.map((base): TrainingRow => {
    const baseWeightBytes = base === 'BF16' ? bf16WeightBytes(d) : presetSize(d, base).tensorBytes;
    const memory = trainingMemoryFor(d, { baseWeightBytes, loraParams, tokens: o.seqLen });
    const spareBytes = o.vram - o.headroom - memory.total;
    return { base, memory, fits: spareBytes >= 0, spareBytes };
  });
  return { seqLen: o.seqLen, rank: o.rank, loraParams, rows, recommended: rows.find((r) => r.fits)?.base };
}
