// Legacy 32-value block formats Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 (ggml-quants.c quantize_row_*_ref and the
// weighted quantize_row_*_impl used when an imatrix is given; Q8_0 ignores importance weights).
import type { Codec } from './types.js';
import { cvtt, f, fp32ToFp16, readF16, toI8, toU8, writeF16 } from './numeric.js';
import { makeQkx3Quants, makeQxQuants } from './scale-search.js';

const QK = 32;
const FLT_MAX = 3.4028234663852886e38;

/** sigma² of a whole row: the weighted paths scale importance by sqrt(sigma² + x²). */
function rowSigma2(x: Float32Array, xo: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s = f(s + f(x[xo + j]! * x[xo + j]!));
  return f(s / n);
}

function fillWeights(w: Float32Array, qw: Float32Array, qo: number, x: Float32Array, xo: number, sigma2: number): void {
  for (let j = 0; j < QK; j++) w[j] = f(qw[qo + j]! * f(Math.sqrt(f(sigma2 + f(x[xo + j]! * x[xo + j]!)))));
}

/** Signed absolute maximum of a block: the value with the largest |x| (first one on ties). */
function signedAmax(x: Float32Array, xo: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j]!;
    if (amax < Math.abs(v)) { amax = Math.abs(v); max = v; }
  }
  return max;
}

function minMax(x: Float32Array, xo: number): [number, number] {
  let min = FLT_MAX;
  let max = -FLT_MAX;
  for (let j = 0; j < QK; j++) {
    const v = x[xo + j]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return [min, max];
}

function writeU32(dst: Uint8Array, o: number, v: number): void {
  dst[o] = v & 0xff; dst[o + 1] = (v >>> 8) & 0xff; dst[o + 2] = (v >>> 16) & 0xff; dst[o + 3] = (v >>> 24) & 0xff;
}

function readU32(src: Uint8Array, o: number): number {
  return (src[o]! | (src[o + 1]! << 8) | (src[o + 2]! << 16) | (src[o + 3]! << 24)) >>> 0;
}

// ---- Q4_0: d (f16), qs[16]; value = (q − 8)·d
function q4_0Block(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const max = signedAmax(x, xo);
  const d = f(max / -8);
  const id = d ? f(1 / d) : 0;
  writeF16(y, yo, fp32ToFp16(d));
  for (let j = 0; j < QK / 2; j++) {
    const x0 = f(x[xo + j]! * id);
    const x1 = f(x[xo + QK / 2 + j]! * id);
    const xi0 = toU8(Math.min(15, toI8(cvtt(f(x0 + 8.5)))));
    const xi1 = toU8(Math.min(15, toI8(cvtt(f(x1 + 8.5)))));
    y[yo + 2 + j] = xi0 | (xi1 << 4);
  }
}

// ---- Q4_1: d, m (f16), qs[16]; value = q·d + m
function q4_1Block(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const [min, max] = minMax(x, xo);
  const d = f(f(max - min) / 15);
  const id = d ? f(1 / d) : 0;
  writeF16(y, yo, fp32ToFp16(d));
  writeF16(y, yo + 2, fp32ToFp16(min));
  for (let j = 0; j < QK / 2; j++) {
    const x0 = f(f(x[xo + j]! - min) * id);
    const x1 = f(f(x[xo + QK / 2 + j]! - min) * id);
    const xi0 = toU8(Math.min(15, toI8(cvtt(f(x0 + 0.5)))));
    const xi1 = toU8(Math.min(15, toI8(cvtt(f(x1 + 0.5)))));
    y[yo + 4 + j] = xi0 | (xi1 << 4);
  }
}

// ---- Q5_0: d, qh (u32: 5th bits), qs[16]; value = (q − 16)·d
function q5_0Block(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const max = signedAmax(x, xo);
  const d = f(max / -16);
  const id = d ? f(1 / d) : 0;
  writeF16(y, yo, fp32ToFp16(d));
  let qh = 0;
  for (let j = 0; j < QK / 2; j++) {
    const x0 = f(x[xo + j]! * id);
    const x1 = f(x[xo + QK / 2 + j]! * id);
    const xi0 = toU8(Math.min(31, toI8(cvtt(f(x0 + 16.5)))));
    const xi1 = toU8(Math.min(31, toI8(cvtt(f(x1 + 16.5)))));
    y[yo + 6 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh |= ((xi0 & 0x10) >>> 4) << j;
    qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
  }
  writeU32(y, yo + 2, qh >>> 0);
}

// ---- Q5_1: d, m, qh, qs[16]; value = q·d + m
function q5_1Block(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const [min, max] = minMax(x, xo);
  const d = f(f(max - min) / 31);
  const id = d ? f(1 / d) : 0;
  writeF16(y, yo, fp32ToFp16(d));
  writeF16(y, yo + 2, fp32ToFp16(min));
  let qh = 0;
  for (let j = 0; j < QK / 2; j++) {
    const x0 = f(f(x[xo + j]! - min) * id);
    const x1 = f(f(x[xo + QK / 2 + j]! - min) * id);
    const xi0 = toU8(cvtt(f(x0 + 0.5)));
    const xi1 = toU8(cvtt(f(x1 + 0.5)));
    y[yo + 8 + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh |= ((xi0 & 0x10) >>> 4) << j;
    qh |= ((xi1 & 0x10) >>> 4) << (j + QK / 2);
  }
  writeU32(y, yo + 4, qh >>> 0);
}

// ---- Q8_0: d, qs[32] int8; value = q·d
function q8_0Block(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  let amax = 0;
  for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[xo + j]!));
  const d = f(amax / 127);
  const id = d ? f(1 / d) : 0;
  writeF16(y, yo, fp32ToFp16(d));
  for (let j = 0; j < QK; j++) {
    const v = f(x[xo + j]! * id);
    const r = Number.isFinite(v) ? Math.sign(v) * Math.floor(Math.abs(v) + 0.5) : v; // roundf
    y[yo + 2 + j] = toU8(cvtt(r));
  }
}

// ---- weighted paths (imatrix): per-block scale search with weights qw·sqrt(sigma² + x²)
const wScratch = new Float32Array(QK);
const i8Scratch = new Int8Array(QK);
const u8Scratch = new Uint8Array(QK);
const u8Aux = new Uint8Array(QK);
const minOut = new Float32Array(1);

function q4_0Weighted(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number, sigma2: number): void {
  fillWeights(wScratch, qw, qo, x, xo, sigma2);
  const d = makeQxQuants(QK, 8, x, xo, i8Scratch, 0, 1, wScratch, 0);
  writeF16(y, yo, fp32ToFp16(d));
  for (let j = 0; j < 16; j++) y[yo + 2 + j] = i8Scratch[j]! | (i8Scratch[j + 16]! << 4);
}

function q4_1Weighted(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number, sigma2: number): void {
  fillWeights(wScratch, qw, qo, x, xo, sigma2);
  const d = makeQkx3Quants(QK, 15, x, xo, wScratch, 0, u8Scratch, 0, minOut, 0, u8Aux, -0.9, 0.05, 36, false);
  writeF16(y, yo, fp32ToFp16(d));
  writeF16(y, yo + 2, fp32ToFp16(-minOut[0]!));
  for (let j = 0; j < 16; j++) y[yo + 4 + j] = u8Scratch[j]! | (u8Scratch[j + 16]! << 4);
}

function packQ5(L: ArrayLike<number>, y: Uint8Array, qhAt: number, qsAt: number): void {
  let qh = 0;
  for (let j = 0; j < 16; j++) {
    const xi0 = L[j]! & 0xff;
    const xi1 = L[j + 16]! & 0xff;
    y[qsAt + j] = (xi0 & 0x0f) | ((xi1 & 0x0f) << 4);
    qh |= ((xi0 & 0x10) >>> 4) << j;
    qh |= ((xi1 & 0x10) >>> 4) << (j + 16);
  }
  writeU32(y, qhAt, qh >>> 0);
}

function q5_0Weighted(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number, sigma2: number): void {
  fillWeights(wScratch, qw, qo, x, xo, sigma2);
  const d = makeQxQuants(QK, 16, x, xo, i8Scratch, 0, 1, wScratch, 0);
  writeF16(y, yo, fp32ToFp16(d));
  packQ5(i8Scratch, y, yo + 2, yo + 6);
}

function q5_1Weighted(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number, sigma2: number): void {
  fillWeights(wScratch, qw, qo, x, xo, sigma2);
  const d = makeQkx3Quants(QK, 31, x, xo, wScratch, 0, u8Scratch, 0, minOut, 0, u8Aux, -0.9, 0.05, 36, false);
  writeF16(y, yo, fp32ToFp16(d));
  writeF16(y, yo + 2, fp32ToFp16(-minOut[0]!));
  packQ5(u8Scratch, y, yo + 4, yo + 8);
}

type BlockFn = (x: Float32Array, xo: number, y: Uint8Array, yo: number) => void;
type WeightedFn = (x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number, sigma2: number) => void;

function legacyCodec(type: Codec['type'], typeSize: number, plain: BlockFn, weighted: WeightedFn | null, dequant: BlockDequant): Codec {
  return {
    type,
    blockSize: QK,
    typeSize,
    quantizeBlocks(src, dst, nRows, nPerRow, imatrix) {
      const nb = nPerRow / QK;
      for (let r = 0; r < nRows; r++) {
        const xo = r * nPerRow;
        const yo = r * nb * typeSize;
        if (imatrix && weighted) {
          const sigma2 = rowSigma2(src, xo, nPerRow);
          for (let ib = 0; ib < nb; ib++) weighted(src, xo + ib * QK, dst, yo + ib * typeSize, imatrix, ib * QK, sigma2);
        } else {
          for (let ib = 0; ib < nb; ib++) plain(src, xo + ib * QK, dst, yo + ib * typeSize);
        }
      }
    },
    dequantizeBlocks(src, dst, n) {
      for (let ib = 0; ib < n / QK; ib++) dequant(src, ib * typeSize, dst, ib * QK);
    },
  };
}

type BlockDequant = (x: Uint8Array, xo: number, y: Float32Array, yo: number) => void;

const deqQ4_0: BlockDequant = (x, xo, y, yo) => {
  const d = readF16(x, xo);
  for (let j = 0; j < 16; j++) {
    const q = x[xo + 2 + j]!;
    y[yo + j] = f(((q & 0x0f) - 8) * d);
    y[yo + j + 16] = f(((q >> 4) - 8) * d);
  }
};

const deqQ4_1: BlockDequant = (x, xo, y, yo) => {
  const d = readF16(x, xo);
  const m = readF16(x, xo + 2);
  for (let j = 0; j < 16; j++) {
    const q = x[xo + 4 + j]!;
    y[yo + j] = f(f((q & 0x0f) * d) + m);
    y[yo + j + 16] = f(f((q >> 4) * d) + m);
  }
};

const deqQ5_0: BlockDequant = (x, xo, y, yo) => {
  const d = readF16(x, xo);
  const qh = readU32(x, xo + 2);
  for (let j = 0; j < 16; j++) {
    const xh0 = ((qh >>> j) << 4) & 0x10;
    const xh1 = (qh >>> (j + 12)) & 0x10;
    const q = x[xo + 6 + j]!;
    y[yo + j] = f((((q & 0x0f) | xh0) - 16) * d);
    y[yo + j + 16] = f((((q >> 4) | xh1) - 16) * d);
  }
};

const deqQ5_1: BlockDequant = (x, xo, y, yo) => {
  const d = readF16(x, xo);
  const m = readF16(x, xo + 2);
  const qh = readU32(x, xo + 4);
  for (let j = 0; j < 16; j++) {
    const xh0 = ((qh >>> j) << 4) & 0x10;
    const xh1 = (qh >>> (j + 12)) & 0x10;
    const q = x[xo + 8 + j]!;
    y[yo + j] = f(f(((q & 0x0f) | xh0) * d) + m);
    y[yo + j + 16] = f(f(((q >> 4) | xh1) * d) + m);
  }
};

const deqQ8_0: BlockDequant = (x, xo, y, yo) => {
  const d = readF16(x, xo);
  for (let j = 0; j < QK; j++) y[yo + j] = f(toI8(x[xo + 2 + j]!) * d);
};

export const LEGACY_CODECS: readonly Codec[] = [
  legacyCodec('Q4_0', 18, q4_0Block, q4_0Weighted, deqQ4_0),
  legacyCodec('Q4_1', 20, q4_1Block, q4_1Weighted, deqQ4_1),
  legacyCodec('Q5_0', 22, q5_0Block, q5_0Weighted, deqQ5_0),
  legacyCodec('Q5_1', 24, q5_1Block, q5_1Weighted, deqQ5_1),
  legacyCodec('Q8_0', 34, q8_0Block, null, deqQ8_0),
];
