// The trainable model for a GGUF: the engine's LoRA training graphs over the loaded base model.
// Weights stay in their file layout (no CPU repack): the backward pass reads them.
import type { TrainDevice } from './options.js';
import type { TrainableModel } from './model.js';

export interface OpenTrainModelOptions {
  /** Groups and/or module names; undefined = every linear. */
  targets?: readonly string[];
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  seed: number;
  seqLen: number;
  threads?: number;
  device: TrainDevice;
}

export async function openTrainModel(model: string, o: OpenTrainModelOptions): Promise<TrainableModel> {
  const { Model, LoraTrainModel } = await import('@qtk/engine');
  const base = await Model.load(model, { repack: false, device: o.device, threads: o.threads });
  try {
    const t = await LoraTrainModel.create(base, { rank: o.rank, alpha: o.alpha, rslora: o.rslora, dropout: o.dropout, targets: o.targets, seed: o.seed }, { seqLen: o.seqLen });
    return {
      params: () => t.params(),
      setParams: (p) => t.setParams(p),
      lossAndGradients: (b, opts) => t.lossAndGradients(b, opts),
      evalLoss: (b) => t.evalLoss(b),
      free: () => { t.free(); base.free(); },
    };
  } catch (e) {
    base.free();
    throw e;
  }
}
