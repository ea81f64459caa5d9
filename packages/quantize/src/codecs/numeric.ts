// The float32 arithmetic ggml's quantizers rely on, reproduced in JS: every intermediate is rounded with
// Math.fround (one rounding of the exact double result equals C's float op), plus ggml's bit tricks.

export const f = Math.fround;

const cvtF32 = new Float32Array(1);
const cvtI32 = new Int32Array(cvtF32.buffer);
const cvtU32 = new Uint32Array(cvtF32.buffer);

/** ggml's nearest_int: add 1.5·2^23 in float32 and read the low mantissa bits (round half to even for |x| < 2^22; garbage beyond, as in C). */
export function nearestInt(fval: number): number {
  cvtF32[0] = fval + 12582912;
  return (cvtI32[0]! & 0x007fffff) - 0x00400000;
}

/** x86 cvttss2si: truncation toward zero, 0x80000000 for NaN and out-of-range values (what C's float→int casts compile to). */
export function cvtt(x: number): number {
  if (!(x > -2147483649 && x < 2147483648)) return -2147483648;
  return Math.trunc(x);
}

/** C roundf (halves away from zero) on a float32 value. */
export function roundf(x: number): number {
  if (!Number.isFinite(x)) return x;
  const r = Math.floor(Math.abs(x) + 0.5);
  return x < 0 ? -r : r;
}

/** (int8_t) of an int: keep the low byte, signed. */
export const toI8 = (v: number): number => (v << 24) >> 24;
/** (uint8_t) of an int. */
export const toU8 = (v: number): number => v & 0xff;

/** ggml_compute_fp32_to_fp16: round to nearest even via float32 scaling; every NaN becomes 0x7e00 (with the sign). */
export function fp32ToFp16(x: number): number {
  cvtF32[0] = x;
  const w = cvtU32[0]!;
  const shl1w = (w * 2) % 4294967296;
  const sign = (w >>> 16) & 0x8000;
  let base = f(f(Math.abs(cvtF32[0]!) * 5.192296858534828e33) * 7.703719777548943e-34); // 2^112, 2^-110
  let bias = shl1w & 0xff000000;
  bias >>>= 0;
  if (bias < 0x71000000) bias = 0x71000000;
  cvtU32[0] = (bias >>> 1) + 0x07800000;
  base = f(cvtF32[0]! + base);
  cvtF32[0] = base;
  const bits = cvtU32[0]!;
  const expBits = (bits >>> 13) & 0x7c00;
  const mantBits = bits & 0x0fff;
  return sign | (shl1w > 0xff000000 ? 0x7e00 : expBits + mantBits);
}

const F16_TO_F32 = new Float32Array(65536);
{
  for (let h = 0; h < 65536; h++) {
    const s = h & 0x8000 ? -1 : 1;
    const e = (h >>> 10) & 0x1f;
    const m = h & 0x3ff;
    F16_TO_F32[h] = e === 0x1f ? (m ? NaN : s * Infinity) : e === 0 ? s * m * 2 ** -24 : s * (1 + m / 1024) * 2 ** (e - 15);
  }
}

export function fp16ToFp32(h: number): number {
  return F16_TO_F32[h & 0xffff]!;
}

/** Round a value through fp16 and back, as `GGML_FP16_TO_FP32(GGML_FP32_TO_FP16(x))`. */
export function viaFp16(x: number): number {
  return F16_TO_F32[fp32ToFp16(x)]!;
}

/** ggml_compute_fp32_to_bf16: NaN → quiet NaN keeping the top bits; otherwise round to nearest even. */
export function fp32ToBf16(x: number): number {
  cvtF32[0] = x;
  const u = cvtU32[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 64) & 0xffff;
  return ((u + (0x7fff + ((u >>> 16) & 1))) / 65536) & 0xffff;
}

export function bf16ToFp32(b: number): number {
  cvtU32[0] = (b & 0xffff) << 16;
  return cvtF32[0]!;
}

export function writeF16(dst: Uint8Array, o: number, h: number): void {
  dst[o] = h & 0xff;
  dst[o + 1] = h >>> 8;
}

export function readF16(src: Uint8Array, o: number): number {
  return F16_TO_F32[src[o]! | (src[o + 1]! << 8)]!;
}

/** ggml's best_index_int8: index of the table value nearest to x (binary search; ties go up). */
export function bestIndexInt8(n: number, val: Int8Array, x: number): number {
  if (x <= val[0]!) return 0;
  if (x >= val[n - 1]!) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < val[mav]!) mu = mav;
    else ml = mav;
  }
  return f(x - val[mu - 1]!) < f(val[mu]! - x) ? mu - 1 : mu;
}
