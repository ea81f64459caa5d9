// Scalar and bulk conversions between f32 and the storage dtypes of checkpoints (f16, bf16, fp8 e4m3).
// Rounding is IEEE round-to-nearest-even; bulk paths work on typed-array views, one table lookup or
// bit operation per element, because they run over many GB of weights.
import { endianness } from 'node:os';
import { SAFETENSORS_DTYPES, type SafetensorsDtype } from './safetensors/format.js';

const scratch = new ArrayBuffer(4);
const scratchF32 = new Float32Array(scratch);
const scratchU32 = new Uint32Array(scratch);

/** The f32 bit pattern of an f32 value (NaN payloads of a JS number are not preserved). */
export function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0]!;
}

export function f32FromBits(u: number): number {
  scratchU32[0] = u;
  return scratchF32[0]!;
}

/** f32 bits -> f16 bits, the reference rule (numpy's software npy_floatbits_to_halfbits). */
function f32BitsToF16Bits(u: number): number {
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  const mant = u & 0x7fffff;
  if (exp === 0xff) {
    if (mant === 0) return sign | 0x7c00;
    // NaN: keep the top payload bits, but never let them become zero (that would read as Inf).
    const payload = mant >>> 13;
    return sign | 0x7c00 | (payload === 0 ? 1 : payload);
  }
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 everything rounds to zero (2^-25 itself is a tie that goes to the even 0).
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1) !== 0)) h++;
    return sign | h; // a carry to 0x400 is exactly the smallest normal
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) !== 0)) h++; // a carry into the exponent is correct, up to Inf
  return sign | h;
}

// f16 bits -> f32 bits for all 65,536 patterns; NaN payloads are kept (shifted), so decode is exact.
const F16_TO_F32_BITS = new Uint32Array(65536);
const F16_TO_F32 = new Float32Array(F16_TO_F32_BITS.buffer);
for (let h = 0; h < 65536; h++) {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  let bits: number;
  if (exp === 0x1f) bits = sign | 0x7f800000 | (mant << 13);
  else if (exp !== 0) bits = sign | ((exp - 15 + 127) << 23) | (mant << 13);
  else if (mant === 0) bits = sign;
  else {
    // Subnormal: mant * 2^-24 is exact in f32.
    scratchF32[0] = mant * 2 ** -24;
    bits = sign | scratchU32[0]!;
  }
  F16_TO_F32_BITS[h] = bits >>> 0;
}

// fp8 e4m3fn (OCP/NVIDIA "fn"): bias 7, no Inf, only S.1111.111 is NaN, max finite 448.
const FP8_E4M3_TO_F32 = new Float32Array(256);
for (let b = 0; b < 256; b++) {
  const sign = b & 0x80 ? -1 : 1;
  const exp = (b >>> 3) & 0xf;
  const mant = b & 0x7;
  if (exp === 0xf && mant === 0x7) FP8_E4M3_TO_F32[b] = NaN;
  else if (exp === 0) FP8_E4M3_TO_F32[b] = sign * mant * 2 ** -9;
  else FP8_E4M3_TO_F32[b] = sign * (1 + mant / 8) * 2 ** (exp - 7);
}

export function f16BitsToF32(h: number): number {
  return F16_TO_F32[h & 0xffff]!;
}

/** f32 -> f16 bits with round-to-nearest-even, overflow to ±Inf, subnormals, NaN kept NaN (like numpy astype(float16)). A JS double is first rounded to f32. */
export function f32ToF16Bits(x: number): number {
  return f32BitsToF16Bits(f32Bits(x));
}

export function bf16BitsToF32(b: number): number {
  return f32FromBits((b & 0xffff) << 16);
}

/** gguf-py's rule: NaN -> quiet NaN with the top bits kept; everything else rounds to nearest even. */
function f32BitsToBf16Bits(u: number): number {
  if ((u & 0x7fffffff) > 0x7f800000) return (u >>> 16) | 0x0040;
  // u + 0x8000 stays below 2^32 for every non-NaN pattern, so the double sum is exact.
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToBf16Bits(x: number): number {
  return f32BitsToBf16Bits(f32Bits(x));
}

export function fp8E4m3ToF32(b: number): number {
  return FP8_E4M3_TO_F32[b & 0xff]!;
}

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Number of elements in `byteLength` bytes of `dtype`; throws if it is not a whole number. */
function elementCount(dtype: SafetensorsDtype, byteLength: number): number {
  const size = SAFETENSORS_DTYPES[dtype]?.bytes;
  if (size === undefined) throw new Error(`decodeToF32: expected one of ${Object.keys(SAFETENSORS_DTYPES).join(', ')}, got dtype ${String(dtype)}`);
  if (byteLength % size !== 0) throw new Error(`decodeToF32: expected a multiple of ${size} bytes for ${dtype}, got ${byteLength}`);
  return byteLength / size;
}

function outputFor(n: number, out: Float32Array | undefined): Float32Array {
  if (out === undefined) return new Float32Array(n);
  if (out.length < n) throw new Error(`decodeToF32: expected an output of at least ${n} elements, got ${out.length}`);
  return out.length === n ? out : out.subarray(0, n);
}

/**
 * Any numeric safetensors dtype (little-endian bytes) -> f32. Integers convert by value (I64 through
 * Number), BOOL to 0/1. `bytes` may sit at any offset: unaligned input is copied once.
 */
export function decodeToF32(dtype: SafetensorsDtype, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const n = elementCount(dtype, bytes.length);
  const dst = outputFor(n, out);
  if (!LITTLE_ENDIAN_HOST) return decodeToF32Reference(dtype, bytes, dst);
  const size = SAFETENSORS_DTYPES[dtype].bytes;
  const src = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  const { buffer, byteOffset } = src;
  switch (dtype) {
    case 'F32': dst.set(new Float32Array(buffer, byteOffset, n)); break;
    case 'F64': dst.set(new Float64Array(buffer, byteOffset, n)); break;
    case 'F16': {
      const h = new Uint16Array(buffer, byteOffset, n);
      const o = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = F16_TO_F32_BITS[h[i]!]!;
      break;
    }
    case 'BF16': {
      const h = new Uint16Array(buffer, byteOffset, n);
      const o = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) o[i] = h[i]! << 16;
      break;
    }
    case 'F8_E4M3': for (let i = 0; i < n; i++) dst[i] = FP8_E4M3_TO_F32[src[i]!]!; break;
    case 'I64': {
      const v = new BigInt64Array(buffer, byteOffset, n);
      for (let i = 0; i < n; i++) dst[i] = Number(v[i]!);
      break;
    }
    case 'I32': dst.set(new Int32Array(buffer, byteOffset, n)); break;
    case 'I16': dst.set(new Int16Array(buffer, byteOffset, n)); break;
    case 'I8': dst.set(new Int8Array(buffer, byteOffset, n)); break;
    case 'U8': dst.set(src); break;
    case 'BOOL': for (let i = 0; i < n; i++) dst[i] = src[i] !== 0 ? 1 : 0; break;
  }
  return dst;
}

/** The readable per-element version of decodeToF32 (DataView, scalar conversions): the fast path is tested against it, and big-endian hosts use it. */
export function decodeToF32Reference(dtype: SafetensorsDtype, bytes: Uint8Array, out?: Float32Array): Float32Array {
  const n = elementCount(dtype, bytes.length);
  const dst = outputFor(n, out);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const read: (i: number) => number = {
    F64: (i: number) => dv.getFloat64(i * 8, true),
    F32: (i: number) => dv.getFloat32(i * 4, true),
    F16: (i: number) => f16BitsToF32(dv.getUint16(i * 2, true)),
    BF16: (i: number) => bf16BitsToF32(dv.getUint16(i * 2, true)),
    F8_E4M3: (i: number) => fp8E4m3ToF32(dv.getUint8(i)),
    I64: (i: number) => Number(dv.getBigInt64(i * 8, true)),
    I32: (i: number) => dv.getInt32(i * 4, true),
    I16: (i: number) => dv.getInt16(i * 2, true),
    I8: (i: number) => dv.getInt8(i),
    U8: (i: number) => dv.getUint8(i),
    BOOL: (i: number) => (dv.getUint8(i) !== 0 ? 1 : 0),
  }[dtype];
  for (let i = 0; i < n; i++) dst[i] = read(i);
  return dst;
}

/** f32 -> little-endian F32/F16/BF16 bytes (RNE; NaN payloads are handled bit-exactly from the f32 bits). */
export function encodeFromF32(values: Float32Array, dtype: 'F32' | 'F16' | 'BF16'): Uint8Array {
  const n = values.length;
  const bits = new Uint32Array(values.buffer, values.byteOffset, n);
  if (dtype === 'F32') {
    const out = new Uint8Array(n * 4);
    if (LITTLE_ENDIAN_HOST) out.set(new Uint8Array(values.buffer, values.byteOffset, n * 4));
    else {
      const dv = new DataView(out.buffer);
      for (let i = 0; i < n; i++) dv.setUint32(i * 4, bits[i]!, true);
    }
    return out;
  }
  if (dtype !== 'F16' && dtype !== 'BF16') throw new Error(`encodeFromF32: expected F32, F16 or BF16, got ${String(dtype)}`);
  const out = new Uint8Array(n * 2);
  const conv = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  if (LITTLE_ENDIAN_HOST) {
    const o = new Uint16Array(out.buffer, 0, n);
    for (let i = 0; i < n; i++) o[i] = conv(bits[i]!);
  } else {
    const dv = new DataView(out.buffer);
    for (let i = 0; i < n; i++) dv.setUint16(i * 2, conv(bits[i]!), true);
  }
  return out;
}
