// What the trainer needs from a model: the LoRA parameters (in Hugging Face module space), the summed
// loss and gradients of one packed row, and an eval loss. The engine's LoraTrainModel satisfies it;
// tests also drive it with objectives whose gradients are known exactly.

/** One packed row: token ids, which positions count in the loss, and the document of each token. */
export interface TrainBatch {
  tokens: Int32Array;
  /** 1 where the token is a training target (its prediction from the tokens before it counts). */
  lossMask: Uint8Array;
  /** Same document id = may attend to each other; -1 is padding. */
  documentIds: Int32Array;
}

/** One adapted linear: lora_A `[r, in]` and lora_B `[out, r]`, row-major f32. */
export interface LoraParam {
  /** The HF module path, e.g. model.layers.0.self_attn.q_proj. */
  module: string;
  /** The GGUF tensor it adapts, e.g. blk.0.attn_q.weight. */
  tensor: string;
  a: Float32Array;
  b: Float32Array;
  shapeA: readonly [number, number];
  shapeB: readonly [number, number];
}

export interface LossAndGradients {
  /** Sum of the negative log-likelihood over the loss-mask positions. */
  lossSum: number;
  /** Number of loss-mask positions summed. */
  nTokens: number;
  /** d lossSum / d (a, b), one entry per parameter in params() order. */
  grads: readonly { a: Float32Array; b: Float32Array }[];
}

export interface TrainableModel {
  params(): readonly LoraParam[];
  /** Matched by module name. */
  setParams(params: readonly { module: string; a: Float32Array; b: Float32Array }[]): void;
  lossAndGradients(batch: TrainBatch, opts: { dropoutSeed: number }): LossAndGradients | Promise<LossAndGradients>;
  evalLoss(batch: TrainBatch): { lossSum: number; nTokens: number } | Promise<{ lossSum: number; nTokens: number }>;
  free(): void;
}
