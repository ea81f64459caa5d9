// Peak memory of one LoRA training step on the engine (layer-wise recomputation, chunked loss head):
//   base weights in their stored types
// + LoRA parameters × 4 values (weights, gradients, AdamW m and v) × 4 bytes
// + (n_layers + 1) layer inputs + 2 gradient rows, T × hidden × 4 bytes each
// + one layer's forward + backward working set
// + one loss chunk: logits, cross-entropy intermediate and the one-hot labels (device and host), vocab × chunk × 4 bytes each
// + the engine's fixed runtime: graph metadata (32,768-tensor ggml contexts with gradient slots) and the JS
//   heap's working arrays, measured 36–44 MiB beside the terms above.
// A pure function of sizes, so a planner can evaluate it before loading anything.

export interface TrainingMemoryInput {
  /** Bytes of every base weight in its stored type (GGUF tensor data). */
  baseWeightBytes: number;
  /** Σ over targets of rank × (in + out). */
  loraParams: number;
  nLayers: number;
  hidden: number;
  /** Tokens per row (sequence length of a step). */
  tokens: number;
  vocab: number;
  /** Tokens per loss-head chunk (the engine's default: max(1, ⌊2^24 / vocab⌋)). */
  lossChunkTokens?: number;
  /** One layer's forward + backward working set; default: `layerWorkingSetBytes(...)`. */
  layerWorkingSet?: number;
  /** For the default working set: the largest per-token width inside a layer (see below). */
  layer?: LayerShape;
}

/** What sets a layer's working set: widths per token and the attention / DeltaNet quadratic parts. */
export interface LayerShape {
  /** Feed-forward width (intermediate_size). */
  ff: number;
  /** Query heads × head dim of full-attention layers (q_proj output without the gate). */
  qDim: number;
  nHead: number;
  /** DeltaNet (qwen35): value heads and key/value head dim; 0 for plain decoders. */
  gdnHeads?: number;
  gdnHeadDim?: number;
  /** DeltaNet conv channels (2·key_dim + value_dim). */
  gdnConv?: number;
}

export interface TrainingMemory {
  total: number;
  base: number;
  lora: number;
  layerInputs: number;
  layerWorkingSet: number;
  lossChunk: number;
  runtime: number;
}

/** Fixed overhead of a training step beside the sized terms (measured, bench/train-memory.mjs). */
export const TRAINING_RUNTIME_BYTES = 40 * 2 ** 20;

export const LOSS_CHUNK_LOGITS = 1 << 24;

/** The engine's default loss-head chunk for a vocabulary. */
export function defaultLossChunk(vocab: number): number {
  return Math.max(1, Math.floor(LOSS_CHUNK_LOGITS / vocab));
}

/**
 * A layer's forward + backward buffer (ggml's allocator, f32). Every forward intermediate is kept for
 * the backward pass, and about as much again is live as gradients: ≈ 12 per-token vectors of the
 * widest projections plus the T² attention scores (scores, probabilities and their gradients) or the
 * DeltaNet's chunk matrices (C ≤ 64 tokens: T × C per head, ~24 such tensors with gradients).
 * Coefficients fitted to ggml's allocator on qwen3_5 fixtures (hidden 64–256, T 64–256): within 10 %.
 */
export function layerWorkingSetBytes(hidden: number, tokens: number, s: LayerShape): number {
  const T = tokens;
  const perToken = 6 * hidden + 3 * (2 * s.ff) + 4 * s.qDim + (s.gdnConv ?? 0) * 3;
  const attn = 4 * s.nHead * T * T;
  const C = Math.min(64, 2 ** Math.ceil(Math.log2(Math.max(2, T))));
  const gdn = s.gdnHeads ? 24 * s.gdnHeads * T * C + 18 * s.gdnHeads * (s.gdnHeadDim ?? 0) * T : 0;
  return 4 * (T * perToken + Math.max(attn, gdn));
}

export function trainingMemory(i: TrainingMemoryInput): TrainingMemory {
  const chunk = Math.min(i.tokens, i.lossChunkTokens ?? defaultLossChunk(i.vocab));
  const base = i.baseWeightBytes;
  const lora = i.loraParams * 4 * 4;
  const layerInputs = (i.nLayers + 3) * i.tokens * i.hidden * 4;
  const layerWorkingSet = i.layerWorkingSet ?? (i.layer ? layerWorkingSetBytes(i.hidden, i.tokens, i.layer) : 0);
  // logits, cross-entropy's softmax and the labels on the device, plus the host labels
  const lossChunk = 4 * i.vocab * chunk * 4;
  const runtime = TRAINING_RUNTIME_BYTES;
  return { total: base + lora + layerInputs + layerWorkingSet + lossChunk + runtime, base, lora, layerInputs, layerWorkingSet, lossChunk, runtime };
}
