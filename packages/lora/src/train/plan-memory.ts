// The memory a run needs, before any work: the engine's training-step formula (@qtk/core's
// trainingMemoryFor, the same one `qtk plan --train` evaluates, from the GGUF's header) plus what this
// process already holds (Node, its modules and the dataset rows), measured when the plan is made.
import v8 from 'node:v8';
import vm from 'node:vm';
import { describeGguf, GgufReader, trainingMemoryFor } from '@qtk/core';

/**
 * RSS of what this process keeps for the run. A full collection first: the dataset reader's and the
 * tokenizer's dead objects (60–100 MiB of V8 heap and Arrow buffers on a 151k-vocabulary model) are
 * freed during the run, and sampled uncollected they made the plan 10–18 % high. Then the heap's free
 * space is left out: V8 keeps those pages and refills them with the run's own JS arrays, which the
 * formula's runtime term already counts.
 */
function liveRss(): number {
  v8.setFlagsFromString('--expose-gc');
  (vm.runInNewContext('gc') as () => void)();
  const m = process.memoryUsage();
  return m.rss - (m.heapTotal - m.heapUsed);
}

export async function planMemory(model: string, o: { loraParams: number; tokens: number }): Promise<{ total: number; parts: Record<string, number> }> {
  const r = await GgufReader.open(model);
  try {
    const d = describeGguf(model, r, r.tensors, r.dataOffset);
    const m = trainingMemoryFor(d, { baseWeightBytes: r.tensors.reduce((a, t) => a + t.byteLength, 0), loraParams: o.loraParams, tokens: o.tokens });
    const runtime = liveRss();
    return { total: runtime + m.total, parts: { process: runtime, base: m.base, lora: m.lora, layerInputs: m.layerInputs, layer: m.layerWorkingSet, lossChunk: m.lossChunk, engine: m.runtime } };
  } finally {
    await r.close();
  }
}
