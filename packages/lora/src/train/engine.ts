// The trainable model for a GGUF: the engine's LoRA training graphs.
import { QtkError, type LoraTarget } from '@qtk/core';
import type { TrainDevice } from './options.js';
import type { TrainableModel } from './model.js';

export interface OpenTrainModelOptions {
  targets: readonly LoraTarget[];
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  seed: number;
  seqLen: number;
  threads?: number;
  device: TrainDevice;
}

export async function openTrainModel(model: string, _o: OpenTrainModelOptions): Promise<TrainableModel> {
  throw new QtkError(`${model}: this build has no LoRA training engine. Update qtk.`);
}
