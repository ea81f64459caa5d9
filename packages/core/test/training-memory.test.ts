// The training memory formula: each term as documented, so a planner can rely on the split.
import { describe, expect, it } from 'vitest';
import { defaultLossChunk, TRAINING_RUNTIME_BYTES, trainingMemory } from '../src/index.js';

describe('trainingMemory', () => {
  const m = trainingMemory({ baseWeightBytes: 1e9, loraParams: 1e6, nLayers: 8, hidden: 1024, tokens: 512, vocab: 248320, layerWorkingSet: 5e7 });
  it('adds base weights, LoRA state ×4 f32, layer inputs, one layer, one loss chunk and the runtime constant', () => {
    expect(m.lora).toBe(16e6);
    expect(m.layerInputs).toBe(11 * 512 * 1024 * 4);
    expect(defaultLossChunk(248320)).toBe(67);
    expect(m.lossChunk).toBe(4 * 248320 * 67 * 4);
    expect(m.total).toBe(1e9 + 16e6 + m.layerInputs + 5e7 + m.lossChunk + TRAINING_RUNTIME_BYTES);
  });
  it('never sizes a loss chunk beyond the row', () => {
    expect(trainingMemory({ baseWeightBytes: 0, loraParams: 0, nLayers: 1, hidden: 8, tokens: 10, vocab: 1000 }).lossChunk).toBe(4 * 1000 * 10 * 4);
  });
});
