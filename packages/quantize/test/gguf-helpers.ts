// Writes small GGUFs with core's GgufWriter for the command tests: a layout's tensors filled with seeded values.
import { GgufWriter, encodeFromF32, ggmlRowBytes, type GgmlTypeName } from '@qtk/core';
import { loadGgmlQuantizer } from '../src/native/ggml-quantize.js';
import type { LayoutTensor } from './layouts.js';
import { gaussian, rng } from './rows.js';

export function tensorValues(t: LayoutTensor, seed: number): Float32Array {
  const n = t.ne.reduce((a, b) => a * b, 1);
  const r = rng(seed);
  if (t.name.includes('norm')) return Float32Array.from({ length: n }, () => 1 + 0.1 * gaussian(r));
  return Float32Array.from({ length: n }, () => 0.05 * gaussian(r));
}

export async function writeModel(
  file: string, arch: string, kv: Record<string, number>, tensors: LayoutTensor[],
  tweak?: (t: LayoutTensor, values: Float32Array) => void,
): Promise<Map<string, Float32Array>> {
  const w = await GgufWriter.create(file, { overwrite: true });
  const values = new Map<string, Float32Array>();
  try {
    w.add('general.architecture', 'STRING', arch);
    w.add('general.name', 'STRING', 'tiny');
    w.add('general.file_type', 'UINT32', 1);
    for (const [k, v] of Object.entries(kv)) w.add(`${arch}.${k}`, 'UINT32', v);
    w.addArray('tokenizer.ggml.tokens', 'STRING', ['a', 'b', 'c']);
    tensors.forEach((t, i) => {
      const v = tensorValues(t, 1000 + i);
      tweak?.(t, v);
      values.set(t.name, v);
      w.addTensorInfo(t.name, t.ne, t.type);
    });
    for (const t of tensors) await w.writeTensorData(t.name, encode(t.type, values.get(t.name)!, t.ne[0]!));
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
  return values;
}

function encode(type: GgmlTypeName, v: Float32Array, ne0: number): Uint8Array {
  if (type === 'F32' || type === 'F16' || type === 'BF16') return encodeFromF32(v, type);
  const out = new Uint8Array((v.length / ne0) * ggmlRowBytes(type, ne0));
  loadGgmlQuantizer().quantizeChunk(type, v, out, v.length / ne0, ne0);
  return out;
}
