// The memory a run needs, before any work: the engine's training-step formula (@qtk/core's
// trainingMemoryFor, the same one `qtk plan --train` evaluates, from the GGUF's header) plus what this
// process already holds (Node, its modules and the dataset rows), measured when the plan is made.
import { describeGguf, GgufReader, trainingMemoryFor } from '@qtk/core';

export async function planMemory(model: string, o: { loraParams: number; tokens: number }): Promise<{ total: number; parts: Record<string, number> }> {
  const r = await GgufReader.open(model);
  try {
    const d = describeGguf(model, r, r.tensors, r.dataOffset);
    const m = trainingMemoryFor(d, { baseWeightBytes: r.tensors.reduce((a, t) => a + t.byteLength, 0), loraParams: o.loraParams, tokens: o.tokens });
    const runtime = process.memoryUsage.rss();
    return { total: runtime + m.total, parts: { process: runtime, base: m.base, lora: m.lora, layerInputs: m.layerInputs, layer: m.layerWorkingSet, lossChunk: m.lossChunk, engine: m.runtime } };
  } finally {
    await r.close();
  }
}
