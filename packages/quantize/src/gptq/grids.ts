// The value grid of one ggml block once its scales are fixed: which code a value rounds to, what ggml's
// to_float gives back for each code, and how the codes are packed beside the scales. GPTQ picks a block's
// scales with the codec's own search, then rounds each column under these grids (ggml-quants.c's
// dequantize_row_* give the f32 arithmetic mirrored here; the packings are the codecs').
import type { GgmlTypeName } from '@qtk/core';
import { KVALUES_IQ4NL } from '../codecs/iq4.js';
import { scaleMinK4 } from '../codecs/k-quants.js';
import { bestIndexInt8, f, nearestInt, readF16, toI8, toU8 } from '../codecs/numeric.js';

export interface BlockGrid {
  readonly type: GgmlTypeName;
  readonly blockSize: number;
  readonly typeSize: number;
  /** Reads the scales (and mins) of the block at y[yo]. */
  load(y: Uint8Array, yo: number): void;
  /** The level x rounds to at position p of the loaded block (the codec's final rounding under its stored scales). */
  level(p: number, x: number): number;
  /** ggml's dequantized value of level q at position p of the loaded block. */
  value(p: number, q: number): number;
  /** Writes one level per position into the block's quant bits, keeping its scales. */
  pack(levels: Int16Array, y: Uint8Array, yo: number): void;
}

const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));

interface AffineSpec {
  type: GgmlTypeName;
  blockSize: number;
  typeSize: number;
  /** Positions per scale (sub-block length). */
  sub: number;
  lo: number;
  hi: number;
  /** Whether values carry an additive term (mins): value = a·q + b, else a·q. */
  hasMin: boolean;
  /** Per sub-block scale a[j] and additive b[j] from the stored bytes. */
  read(y: Uint8Array, yo: number, a: Float32Array, b: Float32Array): void;
  pack(levels: Int16Array, y: Uint8Array, yo: number): void;
}

function affineGrid(s: AffineSpec): BlockGrid {
  const a = new Float32Array(s.blockSize / s.sub);
  const b = new Float32Array(s.blockSize / s.sub);
  const shift = Math.log2(s.sub);
  return {
    type: s.type, blockSize: s.blockSize, typeSize: s.typeSize,
    load: (y, yo) => s.read(y, yo, a, b),
    level(p, x) {
      const j = p >> shift;
      const d = a[j]!;
      if (!d) return clamp(0, s.lo, s.hi);
      return clamp(nearestInt(s.hasMin ? f(f(x - b[j]!) / d) : f(x / d)), s.lo, s.hi);
    },
    value(p, q) {
      const j = p >> shift;
      return s.hasMin ? f(f(a[j]! * q) + b[j]!) : f(a[j]! * q);
    },
    pack: s.pack,
  };
}

function writeU32(y: Uint8Array, o: number, v: number): void {
  for (let k = 0; k < 4; k++) y[o + k] = (v >>> (8 * k)) & 0xff;
}

/** Byte l of each 32-byte group holds levels j+l, j+l+32, j+l+64, j+l+96 (2 bits each), offset by `add`. */
function pack2bit(levels: Int16Array, add: number, y: Uint8Array, qs: number): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l++) {
      const v = (k: number) => (levels[j + l + k]! + add) & 3;
      y[qs + j / 4 + l] = v(0) | (v(32) << 2) | (v(64) << 4) | (v(96) << 6);
    }
  }
}

function kScaleMin(dAt: number, mAt: number, scAt: number) {
  return (y: Uint8Array, yo: number, a: Float32Array, b: Float32Array): void => {
    const d = readF16(y, yo + dAt), m = readF16(y, yo + mAt);
    for (let j = 0; j < 8; j++) {
      const [sc, mn] = scaleMinK4(y, yo + scAt, j);
      a[j] = f(d * sc);
      b[j] = -f(m * mn);
    }
  };
}

// Q4_K: d, dmin, scales[12], qs[128]: nibbles of values j+l (low) and j+l+32 (high) per 64.
const Q4_K = affineGrid({
  type: 'Q4_K', blockSize: 256, typeSize: 144, sub: 32, lo: 0, hi: 15, hasMin: true,
  read: kScaleMin(0, 2, 4),
  pack(L, y, yo) {
    for (let j = 0, q = yo + 16; j < 256; j += 64, q += 32) {
      for (let l = 0; l < 32; l++) y[q + l] = L[j + l]! | (L[j + l + 32]! << 4);
    }
  },
});

// Q5_K: d, dmin, scales[12], qh[32], qs[128]: Q4_K's nibbles plus a fifth bit per value in qh.
const Q5_K = affineGrid({
  type: 'Q5_K', blockSize: 256, typeSize: 176, sub: 32, lo: 0, hi: 31, hasMin: true,
  read: kScaleMin(0, 2, 4),
  pack(L, y, yo) {
    const qh = yo + 16;
    y.fill(0, qh, qh + 32);
    for (let n = 0, ql = yo + 48, m1 = 1, m2 = 2; n < 256; n += 64, ql += 32, m1 <<= 2, m2 <<= 2) {
      for (let j = 0; j < 32; j++) {
        const l1 = L[n + j]!, l2 = L[n + j + 32]!;
        if (l1 > 15) y[qh + j] |= m1;
        if (l2 > 15) y[qh + j] |= m2;
        y[ql + j] = (l1 & 0xf) | ((l2 & 0xf) << 4);
      }
    }
  },
});

// Q6_K: ql[128], qh[64], scales[16] (int8), d; levels −32..31 stored +32.
const Q6_K = affineGrid({
  type: 'Q6_K', blockSize: 256, typeSize: 210, sub: 16, lo: -32, hi: 31, hasMin: false,
  read(y, yo, a) {
    const d = readF16(y, yo + 208);
    for (let j = 0; j < 16; j++) a[j] = f(d * toI8(y[yo + 192 + j]!));
  },
  pack(L, y, yo) {
    for (let j = 0, ql = yo, qh = yo + 128; j < 256; j += 128, ql += 64, qh += 32) {
      for (let l = 0; l < 32; l++) {
        const p = L[j + l]! + 32, q = L[j + l + 32]! + 32, r = L[j + l + 64]! + 32, s = L[j + l + 96]! + 32;
        y[ql + l] = (p & 0xf) | ((r & 0xf) << 4);
        y[ql + l + 32] = (q & 0xf) | ((s & 0xf) << 4);
        y[qh + l] = (p >> 4) | ((q >> 4) << 2) | ((r >> 4) << 4) | ((s >> 4) << 6);
      }
    }
  },
});

// Q3_K: hmask[32], qs[64], scales[12] (16 × 6-bit, −32), d; levels −4..3 stored +4, bit 2 in hmask.
const Q3_K = affineGrid({
  type: 'Q3_K', blockSize: 256, typeSize: 110, sub: 16, lo: -4, hi: 3, hasMin: false,
  read(y, yo, a) {
    const d = readF16(y, yo + 108), so = yo + 96;
    for (let j = 0; j < 16; j++) {
      const lo = j < 8 ? y[so + j]! & 0xf : y[so + j - 8]! >> 4;
      a[j] = f(d * toI8((lo | (((y[so + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4)) - 32));
    }
  },
  pack(L, y, yo) {
    y.fill(0, yo, yo + 32);
    for (let j = 0; j < 256; j++) if (L[j]! + 4 > 3) y[yo + (j % 32)] |= 1 << (j >> 5);
    pack2bit(L, 4, y, yo + 32);
  },
});

// Q2_K: scales[16] (4-bit scale | 4-bit min), qs[64], d, dmin.
const Q2_K = affineGrid({
  type: 'Q2_K', blockSize: 256, typeSize: 84, sub: 16, lo: 0, hi: 3, hasMin: true,
  read(y, yo, a, b) {
    const d = readF16(y, yo + 80), m = readF16(y, yo + 82);
    for (let j = 0; j < 16; j++) {
      const sc = y[yo + j]!;
      a[j] = f(d * (sc & 0xf));
      b[j] = -f(m * (sc >> 4));
    }
  },
  pack: (L, y, yo) => pack2bit(L, 0, y, yo + 16),
});

/** Legacy 32-value blocks: d (and m) in f16, nibbles j (low) and j+16 (high), 5th bits in a u32. */
function legacy(type: GgmlTypeName, typeSize: number, lo: number, hi: number, hasMin: boolean, qhAt: number, qsAt: number): BlockGrid {
  return affineGrid({
    type, blockSize: 32, typeSize, sub: 32, lo, hi, hasMin,
    read(y, yo, a, b) {
      a[0] = readF16(y, yo);
      b[0] = hasMin ? readF16(y, yo + 2) : 0;
    },
    pack(L, y, yo) {
      let qh = 0;
      for (let j = 0; j < 16; j++) {
        const x0 = L[j]! - lo, x1 = L[j + 16]! - lo;
        y[yo + qsAt + j] = (x0 & 0xf) | ((x1 & 0xf) << 4);
        qh |= ((x0 >> 4) & 1) << j;
        qh |= ((x1 >> 4) & 1) << (j + 16);
      }
      if (qhAt >= 0) writeU32(y, yo + qhAt, qh >>> 0);
    },
  });
}

const Q8_0 = affineGrid({
  type: 'Q8_0', blockSize: 32, typeSize: 34, sub: 32, lo: -127, hi: 127, hasMin: false,
  read(y, yo, a) { a[0] = readF16(y, yo); },
  pack(L, y, yo) { for (let j = 0; j < 32; j++) y[yo + 2 + j] = toU8(L[j]!); },
});

/** IQ4_NL / IQ4_XS: levels index the non-linear table; one scale per 32 values. */
function iq4Grid(type: 'IQ4_NL' | 'IQ4_XS'): BlockGrid {
  const xs = type === 'IQ4_XS';
  const blockSize = xs ? 256 : 32, qsAt = xs ? 8 : 2;
  const a = new Float32Array(blockSize / 32);
  return {
    type, blockSize, typeSize: xs ? 136 : 18,
    load(y, yo) {
      const d = readF16(y, yo);
      if (!xs) { a[0] = d; return; }
      const sh = y[yo + 2]! | (y[yo + 3]! << 8);
      for (let ib = 0; ib < 8; ib++) {
        const ls = ((y[yo + 4 + (ib >> 1)]! >> (4 * (ib % 2))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
        a[ib] = f(d * (ls - 32));
      }
    },
    level(p, x) {
      const d = a[p >> 5]!;
      return bestIndexInt8(16, KVALUES_IQ4NL, f((d ? f(1 / d) : 0) * x));
    },
    value: (p, q) => f(a[p >> 5]! * KVALUES_IQ4NL[q]!),
    pack(L, y, yo) {
      for (let i = 0; i < blockSize / 32; i++) {
        for (let j = 0; j < 16; j++) y[yo + qsAt + 16 * i + j] = L[32 * i + j]! | (L[32 * i + 16 + j]! << 4);
      }
    },
  };
}

const GRIDS: ReadonlyMap<GgmlTypeName, () => BlockGrid> = new Map<GgmlTypeName, () => BlockGrid>([
  ['Q2_K', () => Q2_K], ['Q3_K', () => Q3_K], ['Q4_K', () => Q4_K], ['Q5_K', () => Q5_K], ['Q6_K', () => Q6_K],
  ['Q4_0', () => legacy('Q4_0', 18, -8, 7, false, -1, 2)],
  ['Q4_1', () => legacy('Q4_1', 20, 0, 15, true, -1, 4)],
  ['Q5_0', () => legacy('Q5_0', 22, -16, 15, false, 2, 6)],
  ['Q5_1', () => legacy('Q5_1', 24, 0, 31, true, 4, 8)],
  ['Q8_0', () => Q8_0],
  ['IQ4_NL', () => iq4Grid('IQ4_NL')], ['IQ4_XS', () => iq4Grid('IQ4_XS')],
]);

/** The grid of a type GPTQ can round into, or undefined (F16/F32 and types without a codec keep plain rounding). */
export function blockGrid(type: GgmlTypeName): BlockGrid | undefined {
  return GRIDS.get(type)?.();
}

export const GPTQ_TYPES: readonly GgmlTypeName[] = [...GRIDS.keys()];
