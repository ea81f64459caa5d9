// The converter's fast paths equal the plain ones: the bf16 → f16 table against decode + encode for every
// bf16 pattern; Q8_0 against the written-out rule (d = max|x|/127, round half away from zero).
import { describe, expect, it } from 'vitest';
import { bf16BitsToF32, f16BitsToF32, f32ToF16Bits } from '@qtk/core';
import { bf16ToF16Table } from '../src/tensor-data.js';
import { quantizeQ8_0 } from '../src/q8_0.js';

describe('fast paths', () => {
  it('bf16 → f16 table equals the scalar rule (exact bf16 → f32, then f16 round-to-nearest-even) for all 65,536 patterns', () => {
    const lut = bf16ToF16Table();
    let diff = 0;
    for (let b = 0; b < 65536; b++) {
      const x = bf16BitsToF32(b);
      // NaN stays NaN (its payload is kept by the bit-level path; a JS number cannot carry it).
      const ok = Number.isNaN(x) ? (lut[b]! & 0x7c00) === 0x7c00 && (lut[b]! & 0x3ff) !== 0 : lut[b] === f32ToF16Bits(x);
      if (!ok) diff++;
    }
    expect(diff).toBe(0);
    expect(lut[0x3f80]).toBe(0x3c00); // 1.0
    expect(lut[0x4780]).toBe(0x7c00); // 65536 overflows f16 → +Inf
  });

  it('Q8_0: scale, half-away rounding, an all-zero block', () => {
    const x = new Float32Array(64);
    for (let i = 0; i < 32; i++) x[i] = (i - 16) / 8; // max |x| = 2 → d = 2/127
    x[5] = (2 / 127) * 2.5; // exactly half way between 2 and 3 → 3 (away from zero)
    x[6] = -(2 / 127) * 2.5; // → −3
    const q = quantizeQ8_0(x);
    const dv = new DataView(q.buffer);
    const d = f16BitsToF32(dv.getUint16(0, true));
    expect(d).toBeCloseTo(2 / 127, 5);
    expect(dv.getInt8(2 + 0)).toBe(-127);
    expect(dv.getInt8(2 + 5)).toBe(3);
    expect(dv.getInt8(2 + 6)).toBe(-3);
    expect(dv.getInt8(2 + 16)).toBe(0);
    expect(dv.getUint16(34, true)).toBe(0); // zero block: d = 0, all q = 0
    expect([...q.subarray(36, 68)].every((b) => b === 0)).toBe(true);
  });
});
