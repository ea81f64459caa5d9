// Non-linear 4-bit quants IQ4_NL (32-value blocks) and IQ4_XS (256-value super-blocks with 6-bit
// sub-block scales): ggml-quants.c quantize_row_iq4_nl_impl with the ±7 scale sweep that
// ggml_quantize_chunk always uses (weights x² without an imatrix, qw·sqrt(sigma² + x²) with one).
import type { Codec } from './types.js';
import { bestIndexInt8, f, fp32ToFp16, nearestInt, readF16, writeF16 } from './numeric.js';
import { GROUP_MAX_EPS, signedAbsMax } from './scale-search.js';

export const KVALUES_IQ4NL = Int8Array.from([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
const NTRY = 7;

const L = new Uint8Array(256);
const weight = new Float32Array(32);
const scales = new Float32Array(8);

/**
 * One super-block of `superSize` values in sub-blocks of 32: best scale per sub-block, then (for
 * IQ4_XS) 6-bit sub-scales under one fp16 d. Writes d at `dAt`, the nibbles at `qsAt`, and for
 * IQ4_XS scales_h (u16) at `shAt` and scales_l[4] at `slAt`.
 */
function iq4Block(
  superSize: number, x: Float32Array, xo: number, y: Uint8Array, dAt: number, qsAt: number, shAt: number, slAt: number,
  qw: Float32Array | undefined, qo: number,
): void {
  const values = KVALUES_IQ4NL;
  let sigma2 = 0;
  for (let j = 0; j < superSize; j++) sigma2 = f(sigma2 + f(x[xo + j]! * x[xo + j]!));
  sigma2 = f(sigma2 * f(2 / superSize));
  y.fill(0, qsAt, qsAt + superSize / 2);
  writeF16(y, dAt, fp32ToFp16(0));

  let maxScale = 0;
  let amaxScale = 0;
  const nb = superSize / 32;
  for (let ib = 0; ib < nb; ib++) {
    const xb = xo + ib * 32;
    if (qw) for (let j = 0; j < 32; j++) weight[j] = f(qw[qo + ib * 32 + j]! * f(Math.sqrt(f(sigma2 + f(x[xb + j]! * x[xb + j]!)))));
    else for (let j = 0; j < 32; j++) weight[j] = f(x[xb + j]! * x[xb + j]!);
    const max = signedAbsMax(x, xb, 32);
    const amax = Math.abs(max);
    if (amax < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    let d = f(-max / values[0]!);
    let id = f(1 / d);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const l = bestIndexInt8(16, values, f(id * x[xb + j]!));
      L[ib * 32 + j] = l;
      const q = values[l]!;
      const w = weight[j]!;
      sumqx = f(sumqx + f(f(w * q) * x[xb + j]!));
      sumq2 = f(sumq2 + f(f(w * q) * q));
    }
    d = sumq2 > 0 ? f(sumqx / sumq2) : 0;
    let best = f(d * sumqx);
    for (let itry = -NTRY; itry <= NTRY; itry++) {
      id = f((itry + values[0]!) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const l = bestIndexInt8(16, values, f(id * x[xb + j]!));
        const q = values[l]!;
        const w = weight[j]!;
        sumqx = f(sumqx + f(f(w * q) * x[xb + j]!));
        sumq2 = f(sumq2 + f(f(w * q) * q));
      }
      if (sumq2 > 0 && f(sumqx * sumqx) > f(best * sumq2)) {
        d = f(sumqx / sumq2);
        best = f(d * sumqx);
      }
    }
    scales[ib] = d;
    const absD = Math.abs(d);
    if (absD > amaxScale) { amaxScale = absD; maxScale = d; }
  }

  if (nb > 1) {
    y[shAt] = 0;
    y[shAt + 1] = 0;
    let sh = 0;
    const d = f(-maxScale / 32);
    writeF16(y, dAt, fp32ToFp16(d));
    const id = d ? f(1 / d) : 0;
    for (let ib = 0; ib < nb; ib++) {
      let l = nearestInt(f(id * scales[ib]!));
      l = Math.max(-32, Math.min(31, l));
      const dl = f(d * l);
      const idl = dl ? f(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[ib * 32 + j] = bestIndexInt8(16, values, f(idl * x[xo + ib * 32 + j]!));
      l += 32;
      const lLow = l & 0xf;
      const lHigh = l >> 4;
      if (ib % 2 === 0) y[slAt + (ib >> 1)] = lLow;
      else y[slAt + (ib >> 1)] |= lLow << 4;
      sh |= lHigh << (2 * (ib % 8));
    }
    y[shAt] = sh & 0xff;
    y[shAt + 1] = (sh >> 8) & 0xff;
  } else {
    writeF16(y, dAt, fp32ToFp16(scales[0]!));
    const id = scales[0] ? f(1 / scales[0]) : 0;
    for (let j = 0; j < superSize; j++) L[j] = bestIndexInt8(16, values, f(id * x[xo + j]!));
  }

  for (let i = 0; i < superSize / 32; i++) {
    for (let j = 0; j < 16; j++) y[qsAt + 16 * i + j] = L[32 * i + j]! | (L[32 * i + 16 + j]! << 4);
  }
}

export const IQ4_CODECS: readonly Codec[] = [
  {
    type: 'IQ4_NL',
    blockSize: 32,
    typeSize: 18,
    quantizeBlocks(src, dst, nRows, nPerRow, imatrix) {
      const nb = nPerRow / 32;
      for (let r = 0; r < nRows; r++) {
        for (let ib = 0; ib < nb; ib++) {
          const yo = (r * nb + ib) * 18;
          iq4Block(32, src, r * nPerRow + ib * 32, dst, yo, yo + 2, -1, -1, imatrix, ib * 32);
        }
      }
    },
    dequantizeBlocks(src, dst, n) {
      for (let ib = 0; ib < n / 32; ib++) {
        const d = readF16(src, ib * 18);
        for (let j = 0; j < 16; j++) {
          const q = src[ib * 18 + 2 + j]!;
          dst[ib * 32 + j] = f(d * KVALUES_IQ4NL[q & 0xf]!);
          dst[ib * 32 + j + 16] = f(d * KVALUES_IQ4NL[q >> 4]!);
        }
      }
    },
  },
  {
    // d (f16), scales_h (u16: 2 high bits per sub-block), scales_l[4] (4 low bits), qs[128] — 136 B
    type: 'IQ4_XS',
    blockSize: 256,
    typeSize: 136,
    quantizeBlocks(src, dst, nRows, nPerRow, imatrix) {
      const nb = nPerRow / 256;
      for (let r = 0; r < nRows; r++) {
        for (let ib = 0; ib < nb; ib++) {
          const yo = (r * nb + ib) * 136;
          iq4Block(256, src, r * nPerRow + ib * 256, dst, yo, yo + 8, yo + 2, yo + 4, imatrix, ib * 256);
        }
      }
    },
    dequantizeBlocks(src, dst, n) {
      for (let i = 0; i < n / 256; i++) {
        const o = i * 136;
        const d = readF16(src, o);
        const sh = src[o + 2]! | (src[o + 3]! << 8);
        for (let ib = 0; ib < 8; ib++) {
          const ls = ((src[o + 4 + (ib >> 1)]! >> (4 * (ib % 2))) & 0xf) | (((sh >> (2 * ib)) & 3) << 4);
          const dl = f(d * (ls - 32));
          for (let j = 0; j < 16; j++) {
            const q = src[o + 8 + 16 * ib + j]!;
            dst[i * 256 + 32 * ib + j] = f(dl * KVALUES_IQ4NL[q & 0xf]!);
            dst[i * 256 + 32 * ib + j + 16] = f(dl * KVALUES_IQ4NL[q >> 4]!);
          }
        }
      }
    },
  },
];
