// Test helper: a seeded GGUF LoRA for a base model, written with @qtk/core's GgufWriter in the layout
// llama.cpp's llama-adapter.cpp loads (general.type "adapter", adapter.type "lora", lora_a [n_in, r],
// lora_b [r, n_out], alpha in adapter.lora.alpha).
import { GgufWriter } from '@qtk/core';
import { readGgufFileInfo } from 'node-llama-cpp';

export async function writeTinyLora(base: string, out: string, opts: { rank?: number; seed?: number; amplitude?: number; targets?: RegExp } = {}): Promise<string[]> {
  const rank = opts.rank ?? 4;
  const amplitude = opts.amplitude ?? 0.5;
  const targets = opts.targets ?? /^blk\.\d+\.(attn_q|ffn_down)\.weight$/;
  const info = await readGgufFileInfo(base, { logWarnings: false });
  const arch = (info.metadata as { general: { architecture: string } }).general.architecture;
  const tensors = (info.fullTensorInfo ?? []).filter((t) => targets.test(t.name));
  if (tensors.length === 0) throw new Error(`no tensor of ${base} matches ${targets}`);
  let state = opts.seed ?? 1234;
  const rand = (): number => {
    // xorshift32: a fixed sequence, so the adapter is the same every run
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) / 0xffffffff - 0.5) * 2 * amplitude;
  };
  const w = await GgufWriter.create(out, { overwrite: true });
  w.add('general.architecture', 'STRING', arch);
  w.add('general.type', 'STRING', 'adapter');
  w.add('adapter.type', 'STRING', 'lora');
  w.add('adapter.lora.alpha', 'FLOAT32', rank);
  const plan = tensors.map((t) => {
    const [nIn, nOut] = t.dimensions.map(Number) as [number, number];
    const name = t.name.replace(/\.weight$/, '.weight');
    return { name, nIn, nOut };
  });
  for (const p of plan) {
    w.addTensorInfo(`${p.name}.lora_a`, [p.nIn, rank], 'F32');
    w.addTensorInfo(`${p.name}.lora_b`, [rank, p.nOut], 'F32');
  }
  for (const p of plan) {
    const a = Float32Array.from({ length: p.nIn * rank }, rand);
    const b = Float32Array.from({ length: rank * p.nOut }, rand);
    await w.writeTensorData(`${p.name}.lora_a`, new Uint8Array(a.buffer));
    await w.writeTensorData(`${p.name}.lora_b`, new Uint8Array(b.buffer));
  }
  await w.finish();
  return plan.map((p) => p.name);
}
