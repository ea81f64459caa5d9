// Plain-TypeScript reference forward passes of the Hugging Face model math, read straight from the
// safetensors: the oracle that converted GGUFs (through llama.cpp) and the engine are checked against.
import { QtkError } from '@qtk/core';
import { qwen3Forward } from './qwen3.js';
import { qwen35Forward } from './qwen3_5.js';
import { HfWeights, type ReferenceOptions, type ReferenceResult } from './weights.js';

// Scalar ops and per-arch pieces under one namespace, so the engine's own names never collide with them.
export * as referenceOps from './ops.js';
export { causalConv1dSilu as referenceCausalConv1dSilu, gatedDeltaRule as referenceGatedDeltaRule, qwen35Dims, qwen35Forward, type Qwen35TextDims } from './qwen3_5.js';
export { qwen3Forward } from './qwen3.js';
export { HfWeights as ReferenceWeights, type ReferenceOptions, type ReferenceResult } from './weights.js';

/** HF model_type → reference forward. */
export const REFERENCE_ARCHS = {
  qwen3_5: qwen35Forward,
  qwen3_5_text: qwen35Forward,
  qwen3: qwen3Forward,
} as const;

/**
 * Logits [T, vocab] for `tokenIds` at positions 0..T-1, computed in float64 from the checkpoint in `dir`
 * (config.json + safetensors, FP8 dequantised). Reads one tensor at a time; meant for small models.
 */
export async function referenceForward(dir: string, tokenIds: number[], opts: ReferenceOptions = {}): Promise<ReferenceResult> {
  const w = await HfWeights.open(dir);
  w.adjust = opts.adjustWeight;
  try {
    const type = String(w.config.model_type);
    const forward = (REFERENCE_ARCHS as Record<string, typeof qwen3Forward | undefined>)[type];
    if (forward === undefined) {
      throw new QtkError(`${dir}/config.json: model_type ${JSON.stringify(type)} has no reference forward. Supported: ${Object.keys(REFERENCE_ARCHS).join(', ')}.`);
    }
    if (tokenIds.length === 0) throw new QtkError('referenceForward: no token ids given. Pass at least one token id.');
    return await forward(w, tokenIds, opts);
  } finally {
    await w.close();
  }
}
