// Q8_0 as the converter's --outtype q8_0 writes it (gguf-py quants.py = ggml quantize_row_q8_0_ref):
// per 32 values d = max|x| / 127, q = roundf(x * (1/d)) (half away from zero), stored as f16 d + 32 int8.
import { f32ToF16Bits } from '@qtk/core';

export const Q8_0_BLOCK_VALUES = 32;
export const Q8_0_BLOCK_BYTES = 34;

/** Quantizes `values` (length a multiple of 32) into Q8_0 blocks. All arithmetic is rounded to f32 as in C. */
export function quantizeQ8_0(values: Float32Array, out = new Uint8Array((values.length / Q8_0_BLOCK_VALUES) * Q8_0_BLOCK_BYTES)): Uint8Array {
  if (values.length % Q8_0_BLOCK_VALUES !== 0) throw new Error(`Q8_0: ${values.length} values is not a multiple of ${Q8_0_BLOCK_VALUES}`);
  const nb = values.length / Q8_0_BLOCK_VALUES;
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const f = Math.fround;
  for (let b = 0; b < nb; b++) {
    const x0 = b * Q8_0_BLOCK_VALUES;
    let amax = 0;
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      const a = Math.abs(values[x0 + j]!);
      if (a > amax) amax = a;
    }
    const d = f(amax / 127);
    const id = d !== 0 ? f(1 / d) : 0;
    const o = b * Q8_0_BLOCK_BYTES;
    dv.setUint16(o, f32ToF16Bits(d), true);
    for (let j = 0; j < Q8_0_BLOCK_VALUES; j++) {
      const v = f(values[x0 + j]! * id);
      // roundf, half away from zero (exact here: |v| ≤ 127, and v ± 0.5 is computed in double).
      out[o + 2 + j] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5) & 0xff;
    }
  }
  return out;
}
