// The memory a run needs, before any work: the engine's training-step formula (@qtk/core's
// trainingMemory, from the GGUF's sizes) plus what this process already holds (Node, its modules and
// the dataset rows), measured when the plan is made.
import { GgufReader, trainingMemory } from '@qtk/core';

export async function planMemory(model: string, o: { loraParams: number; tokens: number }): Promise<{ total: number; parts: Record<string, number> }> {
  const r = await GgufReader.open(model);
  try {
    const arch = String(r.get('general.architecture'));
    const num = (k: string, d = 0) => { const v = r.get(`${arch}.${k}`); return v === undefined ? d : Number(v); };
    const nHead = num('attention.head_count');
    const hidden = num('embedding_length');
    const headDim = num('attention.key_length', hidden / nHead);
    const vocab = (r.get<unknown[]>('tokenizer.ggml.tokens') ?? []).length || r.tensor('token_embd.weight').ne[1]!;
    const gdn = arch === 'qwen35'
      ? { gdnHeads: num('ssm.time_step_rank'), gdnHeadDim: num('ssm.inner_size') / num('ssm.time_step_rank'), gdnConv: 2 * num('ssm.group_count') * num('ssm.state_size') + num('ssm.inner_size') }
      : {};
    const m = trainingMemory({
      baseWeightBytes: r.tensors.reduce((a, t) => a + t.byteLength, 0),
      loraParams: o.loraParams,
      nLayers: num('block_count') - num('nextn_predict_layers'),
      hidden, tokens: o.tokens, vocab,
      layer: { ff: num('feed_forward_length'), qDim: nHead * headDim, nHead, ...gdn },
    });
    const runtime = process.memoryUsage.rss();
    return { total: runtime + m.total, parts: { process: runtime, base: m.base, lora: m.lora, layerInputs: m.layerInputs, layer: m.layerWorkingSet, lossChunk: m.lossChunk, engine: m.runtime } };
  } finally {
    await r.close();
  }
}
