import { describe, it, expect } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import * as path from 'node:path';
import {
  f16BitsToF32, f32ToF16Bits, bf16BitsToF32, f32ToBf16Bits, fp8E4m3ToF32,
  decodeToF32, decodeToF32Reference, encodeFromF32, SAFETENSORS_DTYPES, type SafetensorsDtype,
} from '../src/index.js';

const bitsOf = (x: number) => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const fromBits = (u: number) => new Float32Array(Uint32Array.of(u).buffer)[0]!;

// A small seeded generator (mulberry32) so failures reproduce.
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** The value of a binary float from its fields: the format definition, written with arithmetic only. */
function fromFields(bits: number, expBits: number, mantBits: number, hasInf = true): number {
  const sign = (bits >>> (expBits + mantBits)) & 1 ? -1 : 1;
  const exp = (bits >>> mantBits) & ((1 << expBits) - 1);
  const mant = bits & ((1 << mantBits) - 1);
  const bias = (1 << (expBits - 1)) - 1;
  const maxExp = (1 << expBits) - 1;
  if (hasInf && exp === maxExp) return mant === 0 ? sign * Infinity : NaN;
  if (exp === 0) return sign * mant * 2 ** (1 - bias - mantBits);
  return sign * (1 + mant / 2 ** mantBits) * 2 ** (exp - bias);
}

/**
 * Oracle for f32 -> 16-bit float: exhaustive nearest search over the sorted non-negative finite values
 * of the format, with the next power of two standing in for Inf (IEEE overflow), ties to the even pattern.
 */
function nearestOracle(expBits: number, mantBits: number) {
  const infBits = ((1 << expBits) - 1) << mantBits;
  const values: number[] = [];
  for (let b = 0; b < infBits; b++) values.push(fromFields(b, expBits, mantBits));
  const bias = (1 << (expBits - 1)) - 1;
  values.push(2 ** (bias + 1)); // where the first value of the Inf binade would be
  for (let i = 1; i < values.length; i++) if (!(values[i]! > values[i - 1]!)) throw new Error('values not sorted');
  const signBit = 1 << (expBits + mantBits);
  return (x: number): number => {
    if (Number.isNaN(x)) return -1;
    const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
    const a = Math.abs(x);
    if (a === Infinity) return sign | infBits;
    let lo = 0;
    let hi = values.length - 1;
    if (a >= values[hi]!) return sign | infBits;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (values[mid]! <= a) lo = mid;
      else hi = mid;
    }
    const dLo = a - values[lo]!;
    const dHi = values[hi]! - a;
    const pick = dLo < dHi ? lo : dHi < dLo ? hi : lo % 2 === 0 ? lo : hi;
    return sign | pick; // pattern index == bit pattern for the non-negative values
  };
}

/** f32 inputs: edges, exact ties between neighbouring 16-bit values and their f32 neighbours, random patterns. */
function inputs(expBits: number, mantBits: number, count: number, seed: number): Float32Array {
  const next = rng(seed);
  const out: number[] = [0, -0, Infinity, -Infinity, 3.4028234663852886e38, -3.4028234663852886e38, 1.401298464324817e-45, 1.1754943508222875e-38];
  const infBits = ((1 << expBits) - 1) << mantBits;
  const bias = (1 << (expBits - 1)) - 1;
  const fmin = 2 ** (1 - bias - mantBits);
  out.push(fmin, fmin / 2, fmin / 4, fmin * 0.75, fmin * 1.5, 2 ** (bias + 1));
  for (let i = 0; i < count; i++) {
    const r = next();
    const kind = r % 4;
    if (kind === 0) {
      out.push(fromBits(next())); // any f32 pattern (NaNs filtered below)
    } else {
      const b = next() % infBits;
      const v = fromFields(b, expBits, mantBits);
      const w = b + 1 < infBits ? fromFields(b + 1, expBits, mantBits) : 2 ** (bias + 1);
      const mid = Math.fround((v + w) / 2); // exact: one more mantissa bit than the 16-bit format
      const u = bitsOf(mid);
      const s = next() & 1 ? -1 : 1;
      if (kind === 1) out.push(s * mid);
      else if (kind === 2) out.push(s * fromBits(u + 1), s * fromBits(u - 1));
      else out.push(s * fromBits((bitsOf(v) & 0xff800000) | (next() & 0x7fffff))); // random in v's binade
    }
  }
  return Float32Array.from(out.filter((x) => !Number.isNaN(x)));
}

// ggml's own converters from node-llama-cpp's prebuilt libggml-base, a second external oracle.
function loadGgml(): { toF16: (x: Float32Array) => Uint16Array; toBf16: (x: Float32Array) => Uint16Array; f16ToF32: (h: Uint16Array) => Float32Array } | undefined {
  try {
    const require = createRequire(import.meta.url);
    const koffi = require('koffi');
    const dir = require.resolve.paths('@node-llama-cpp/linux-x64')!
      .map((d: string) => path.join(d, '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64'))
      .find((d: string) => existsSync(path.join(d, 'libggml-base.so')));
    if (dir === undefined) return undefined;
    const lib = koffi.load(path.join(dir, 'libggml-base.so'));
    const toF16 = lib.func('void ggml_fp32_to_fp16_row(const float *x, void *y, int64_t n)');
    const toBf16 = lib.func('void ggml_fp32_to_bf16_row_ref(const float *x, void *y, int64_t n)');
    const f16ToF32 = lib.func('void ggml_fp16_to_fp32_row(const void *x, float *y, int64_t n)');
    return {
      toF16: (x) => { const y = new Uint16Array(x.length); toF16(x, y, x.length); return y; },
      toBf16: (x) => { const y = new Uint16Array(x.length); toBf16(x, y, x.length); return y; },
      f16ToF32: (h) => { const y = new Float32Array(h.length); f16ToF32(h, y, h.length); return y; },
    };
  } catch {
    return undefined;
  }
}
const ggml = loadGgml();
if (ggml === undefined) console.warn('dtypes.test: libggml-base.so not found through koffi (not linux-x64?): skipping the ggml cross-checks');

describe('f16', () => {
  it('decodes all 65,536 patterns per the format definition and round-trips every non-NaN one', () => {
    let nan = 0;
    for (let h = 0; h < 65536; h++) {
      const v = f16BitsToF32(h);
      const def = fromFields(h, 5, 10);
      if (Number.isNaN(def)) {
        nan++;
        expect(Number.isNaN(v)).toBe(true);
        const back = f32ToF16Bits(v);
        expect((back & 0x7c00) === 0x7c00 && (back & 0x3ff) !== 0).toBe(true); // NaN stays NaN
      } else {
        expect(Object.is(v, def)).toBe(true);
        if (f32ToF16Bits(v) !== h) throw new Error(`f16 0x${h.toString(16)} -> ${v} -> 0x${f32ToF16Bits(v).toString(16)}`);
      }
    }
    expect(nan).toBe(2 * 1023);
  });

  it('hand-checked values', () => {
    expect(f16BitsToF32(0x3c00)).toBe(1);
    expect(f16BitsToF32(0x7bff)).toBe(65504);
    expect(f16BitsToF32(0x0001)).toBe(2 ** -24);
    expect(f16BitsToF32(0x0400)).toBe(2 ** -14);
    expect(f16BitsToF32(0xfc00)).toBe(-Infinity);
    expect(f32ToF16Bits(65519.99)).toBe(0x7bff);
    expect(f32ToF16Bits(65520)).toBe(0x7c00); // the tie above max finite goes to (even) Inf
    expect(f32ToF16Bits(2 ** -25)).toBe(0); // tie between 0 and the smallest subnormal: even 0
    expect(f32ToF16Bits(Math.fround(2 ** -25 * 1.0000001))).toBe(1);
    expect(f32ToF16Bits(-0)).toBe(0x8000);
    expect(f32ToF16Bits(1 + 2 ** -11)).toBe(0x3c00); // tie, down to even
    expect(f32ToF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie, up to even
  });

  it('f32 -> f16 rounds to nearest even, against an exhaustive nearest search (and ggml)', () => {
    const oracle = nearestOracle(5, 10);
    const xs = inputs(5, 10, 200_000, 1);
    const got = encodeFromF32(xs, 'F16');
    const g16 = new Uint16Array(got.buffer);
    for (let i = 0; i < xs.length; i++) {
      const want = oracle(xs[i]!);
      const scalar = f32ToF16Bits(xs[i]!);
      if (scalar !== want || g16[i] !== want) throw new Error(`f16(${xs[i]}) = 0x${scalar.toString(16)} / bulk 0x${g16[i]!.toString(16)}, oracle 0x${want.toString(16)}`);
    }
    if (ggml) {
      expect(Buffer.from(ggml.toF16(xs).buffer).equals(Buffer.from(got.buffer))).toBe(true);
      const all = new Uint16Array(65536).map((_, i) => i);
      const mine = decodeToF32('F16', new Uint8Array(all.buffer));
      const theirs = ggml.f16ToF32(all);
      // Non-NaN bit-exact; ggml (hardware conversion) quiets signalling NaNs, we keep the payload as numpy does.
      for (let h = 0; h < 65536; h++) {
        if (Number.isNaN(theirs[h]!)) expect(Number.isNaN(mine[h]!)).toBe(true);
        else if (!Object.is(theirs[h], mine[h])) throw new Error(`f16 0x${h.toString(16)}: ggml ${theirs[h]}, ours ${mine[h]}`);
      }
    }
  });

  it('keeps NaN a NaN, with numpy\'s payload rule', () => {
    expect(f32ToF16Bits(NaN) & 0x7fff).toBe(0x7e00);
    const nans = Uint32Array.of(0x7f800001, 0xff800001, 0x7fc00000, 0x7f802000, 0xffffffff);
    const out = new Uint16Array(encodeFromF32(new Float32Array(nans.buffer), 'F16').buffer);
    expect([...out]).toEqual([0x7c01, 0xfc01, 0x7e00, 0x7c01, 0xffff]);
  });
});

describe('bf16', () => {
  it('decodes all 65,536 patterns per the format definition and round-trips every non-NaN one', () => {
    for (let b = 0; b < 65536; b++) {
      const v = bf16BitsToF32(b);
      const def = fromFields(b, 8, 7);
      if (Number.isNaN(def)) {
        expect(Number.isNaN(v)).toBe(true);
        const back = f32ToBf16Bits(v);
        expect((back & 0x7f80) === 0x7f80 && (back & 0x7f) !== 0).toBe(true);
      } else {
        expect(Object.is(v, def)).toBe(true);
        if (f32ToBf16Bits(v) !== b) throw new Error(`bf16 0x${b.toString(16)} -> ${v} -> 0x${f32ToBf16Bits(v).toString(16)}`);
      }
    }
  });

  it('f32 -> bf16 rounds to nearest even, against an exhaustive nearest search (and ggml)', () => {
    const oracle = nearestOracle(8, 7);
    const xs = inputs(8, 7, 200_000, 2);
    const got = new Uint16Array(encodeFromF32(xs, 'BF16').buffer);
    for (let i = 0; i < xs.length; i++) {
      const want = oracle(xs[i]!);
      const scalar = f32ToBf16Bits(xs[i]!);
      if (scalar !== want || got[i] !== want) throw new Error(`bf16(${xs[i]}) = 0x${scalar.toString(16)} / bulk 0x${got[i]!.toString(16)}, oracle 0x${want.toString(16)}`);
    }
    if (ggml) expect(Buffer.from(ggml.toBf16(xs).buffer).equals(Buffer.from(got.buffer))).toBe(true);
  });

  it('quiets NaN as gguf-py does: (bits >>> 16) | 0x0040', () => {
    const nans = Uint32Array.of(0x7f800001, 0xff811234, 0x7fc00000, 0x7fffffff);
    const out = new Uint16Array(encodeFromF32(new Float32Array(nans.buffer), 'BF16').buffer);
    expect([...out]).toEqual([0x7fc0, 0xffc1, 0x7fc0, 0x7fff]);
    if (ggml) expect([...ggml.toBf16(new Float32Array(nans.buffer))]).toEqual([...out]);
    expect(f32ToBf16Bits(3.4028234663852886e38)).toBe(0x7f80); // max f32 rounds up to Inf
  });
});

describe('fp8 e4m3fn', () => {
  it('decodes all 256 patterns per the format definition (bias 7, subnormals, no Inf, S.1111.111 NaN)', () => {
    for (let b = 0; b < 256; b++) {
      const exp = (b >> 3) & 15;
      const mant = b & 7;
      const want = exp === 15 && mant === 7 ? NaN : fromFields(b, 4, 3, false);
      expect(Object.is(fp8E4m3ToF32(b), want) || (Number.isNaN(want) && Number.isNaN(fp8E4m3ToF32(b)))).toBe(true);
    }
    expect(fp8E4m3ToF32(0x7e)).toBe(448);
    expect(fp8E4m3ToF32(0xfe)).toBe(-448);
    expect(fp8E4m3ToF32(0x01)).toBe(2 ** -9);
    expect(fp8E4m3ToF32(0x08)).toBe(2 ** -6);
    expect(fp8E4m3ToF32(0x38)).toBe(1);
    expect(fp8E4m3ToF32(0x78)).toBe(256); // exponent 15 is finite in e4m3fn
    expect(fp8E4m3ToF32(0x80)).toBe(-0);
    expect(Number.isNaN(fp8E4m3ToF32(0x7f))).toBe(true);
    expect(Number.isNaN(fp8E4m3ToF32(0xff))).toBe(true);
  });
});

describe('bulk decode/encode', () => {
  it('decodeToF32 equals the per-element DataView reference for every dtype, at aligned and unaligned offsets', () => {
    const next = rng(3);
    for (const dtype of Object.keys(SAFETENSORS_DTYPES) as SafetensorsDtype[]) {
      const size = SAFETENSORS_DTYPES[dtype].bytes;
      const n = 1000;
      const raw = new Uint8Array(n * size + 3);
      for (let i = 0; i < raw.length; i++) raw[i] = next() & 0xff;
      if (dtype === 'BOOL') for (let i = 0; i < raw.length; i++) raw[i] = raw[i]! & 1;
      for (const offset of [0, 1, 3]) {
        const bytes = raw.subarray(offset, offset + n * size);
        const fast = decodeToF32(dtype, bytes);
        const ref = decodeToF32Reference(dtype, bytes);
        for (let i = 0; i < n; i++) {
          if (!(Object.is(fast[i], ref[i]) || (Number.isNaN(fast[i]!) && Number.isNaN(ref[i]!)))) throw new Error(`${dtype}[${i}] at offset ${offset}: ${fast[i]} vs ${ref[i]}`);
        }
      }
    }
  });

  it('decodes known little-endian values and fills a given output', () => {
    expect([...decodeToF32('I64', new Uint8Array([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 5, 0, 0, 0, 0, 0, 0, 0]))]).toEqual([-2, 5]);
    expect([...decodeToF32('BF16', new Uint8Array([0x80, 0x3f, 0x00, 0xc0]))]).toEqual([1, -2]);
    expect([...decodeToF32('F16', new Uint8Array([0x00, 0x3c, 0xff, 0x7b]))]).toEqual([1, 65504]);
    const out = new Float32Array(4).fill(9);
    const r = decodeToF32('U8', new Uint8Array([7, 200]), out);
    expect([...r]).toEqual([7, 200]);
    expect([...out]).toEqual([7, 200, 9, 9]);
    expect(() => decodeToF32('F32', new Uint8Array(6))).toThrow(/expected a multiple of 4 bytes for F32, got 6/);
    expect(() => decodeToF32('F32', new Uint8Array(8), new Float32Array(1))).toThrow(/at least 2 elements, got 1/);
  });

  it('encodeFromF32 agrees with the scalar conversions and F32 round-trips bit-exactly', () => {
    const xs = inputs(5, 10, 5000, 4);
    const f32 = encodeFromF32(xs, 'F32');
    expect(Buffer.from(f32).equals(Buffer.from(xs.buffer))).toBe(true);
    expect(Buffer.from(decodeToF32('F32', f32).buffer).equals(Buffer.from(xs.buffer))).toBe(true);
    const bf = new Uint16Array(encodeFromF32(xs, 'BF16').buffer);
    for (let i = 0; i < xs.length; i++) expect(bf[i]).toBe(f32ToBf16Bits(xs[i]!));
    // decode(encode(x)) for f16/bf16 equals scalar rounding
    const back = decodeToF32('F16', encodeFromF32(xs, 'F16'));
    for (let i = 0; i < xs.length; i++) expect(Object.is(back[i], f16BitsToF32(f32ToF16Bits(xs[i]!)))).toBe(true);
  });
});
