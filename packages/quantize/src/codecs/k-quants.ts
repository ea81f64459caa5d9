// k-quants: 256-value super-blocks Q2_K, Q3_K, Q4_K, Q5_K, Q6_K and the intermediate Q8_K
// (ggml-quants.c quantize_row_*_K_ref without an imatrix, quantize_row_*_K_impl with one).
import type { Codec } from './types.js';
import { f, fp16ToFp32, fp32ToFp16, nearestInt, readF16, toI8, toU8, writeF16 } from './numeric.js';
import { GROUP_MAX_EPS, makeQ3Quants, makeQkx2Quants, makeQkx3Quants, makeQpQuants, makeQxQuants } from './scale-search.js';

const QK_K = 256;

// Scratch shared by all blocks (codecs run synchronously, one block at a time).
const Lu = new Uint8Array(QK_K);
const Li = new Int8Array(QK_K);
const Laux = new Uint8Array(32);
const weights = new Float32Array(32);
const scales = new Float32Array(16);
const mins = new Float32Array(16);
const sw = new Float32Array(16);
const Ls = new Uint8Array(16);
const Lm = new Uint8Array(16);
const Lsi = new Int8Array(16);

function sumSquares(x: Float32Array, xo: number, n: number): number {
  let s = 0;
  for (let l = 0; l < n; l++) s = f(s + f(x[xo + l]! * x[xo + l]!));
  return s;
}

/** qw·sqrt(sigma² + x²): how the imatrix paths turn importance into per-value weights. */
function importance(dst: Float32Array, n: number, qw: Float32Array, qo: number, x: Float32Array, xo: number, sigma2: number): void {
  for (let l = 0; l < n; l++) dst[l] = f(qw[qo + l]! * f(Math.sqrt(f(sigma2 + f(x[xo + l]! * x[xo + l]!)))));
}

/** Pack 2-bit values: byte l of each 32-byte group holds L[j+l], L[j+l+32], L[j+l+64], L[j+l+96]. */
function pack2bit(L: Uint8Array | Int8Array, y: Uint8Array, qs: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      y[qs + j / 4 + l] = L[j + l]! | (L[j + l + 32]! << 2) | (L[j + l + 64]! << 4) | (L[j + l + 96]! << 6);
    }
  }
}

// =============================== Q2_K: scales[16] (4-bit scale | 4-bit min), qs[64], d, dmin — 84 B
const Q2 = { scales: 0, qs: 16, d: 80, dmin: 82, size: 84 } as const;

function q2kRequantize(x: Float32Array, xo: number, y: Uint8Array, yo: number, dAll: number, mAll: number): void {
  for (let j = 0; j < 16; j++) {
    const sc = y[yo + Q2.scales + j]!;
    const d = f(dAll * (sc & 0xf));
    if (!d) continue;
    const dm = f(mAll * (sc >> 4));
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(f(x[xo + 16 * j + ii]! + dm) / d));
      Lu[16 * j + ii] = Math.max(0, Math.min(3, l));
    }
  }
  pack2bit(Lu, y, yo + Q2.qs);
}

function q2kRef(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 16; j++) {
    for (let l = 0; l < 16; l++) weights[l] = Math.abs(x[xo + 16 * j + l]!);
    scales[j] = makeQkx2Quants(16, 3, x, xo + 16 * j, weights, 0, Lu, 16 * j, mins, j, Laux, -0.5, 0.1, 15, true);
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  if (maxScale > 0) {
    const iscale = f(15 / maxScale);
    for (let j = 0; j < 16; j++) y[yo + Q2.scales + j] = toU8(nearestInt(f(iscale * scales[j]!)));
    writeF16(y, yo + Q2.d, fp32ToFp16(f(maxScale / 15)));
  } else {
    for (let j = 0; j < 16; j++) y[yo + Q2.scales + j] = 0;
    writeF16(y, yo + Q2.d, fp32ToFp16(0));
  }
  if (maxMin > 0) {
    const iscale = f(15 / maxMin);
    for (let j = 0; j < 16; j++) y[yo + Q2.scales + j] = toU8(y[yo + Q2.scales + j]! | (nearestInt(f(iscale * mins[j]!)) << 4));
    writeF16(y, yo + Q2.dmin, fp32ToFp16(f(maxMin / 15)));
  } else {
    writeF16(y, yo + Q2.dmin, fp32ToFp16(0));
  }
  q2kRequantize(x, xo, y, yo, readF16(y, yo + Q2.d), readF16(y, yo + Q2.dmin));
}

function q2kImpl(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number): void {
  const sigma2 = f(sumSquares(x, xo, QK_K) / QK_K);
  for (let j = 0; j < 16; j++) {
    importance(weights, 16, qw, qo + 16 * j, x, xo + 16 * j, sigma2);
    let s = 0;
    for (let l = 0; l < 16; l++) s = f(s + weights[l]!);
    sw[j] = s;
    scales[j] = makeQkx3Quants(16, 3, x, xo + 16 * j, weights, 0, Lu, 16 * j, mins, j, Laux, -0.9, 0.05, 36, false);
  }
  const dm = makeQpQuants(16, 15, scales, Ls, sw);
  const mm = makeQpQuants(16, 15, mins, Lm, sw);
  writeF16(y, yo + Q2.d, fp32ToFp16(dm));
  writeF16(y, yo + Q2.dmin, fp32ToFp16(mm));
  for (let j = 0; j < 16; j++) y[yo + Q2.scales + j] = toU8(Ls[j]! | (Lm[j]! << 4));
  q2kRequantize(x, xo, y, yo, readF16(y, yo + Q2.d), readF16(y, yo + Q2.dmin));
}

function q2kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  const d = readF16(x, xo + Q2.d);
  const min = readF16(x, xo + Q2.dmin);
  let is = 0;
  let q = xo + Q2.qs;
  for (let n = 0; n < QK_K; n += 128) {
    let shift = 0;
    for (let j = 0; j < 4; j++) {
      for (let half = 0; half < 2; half++) {
        const sc = x[xo + Q2.scales + is++]!;
        const dl = f(d * (sc & 0xf));
        const ml = f(min * (sc >> 4));
        for (let l = 0; l < 16; l++) y[yo++] = f(f(dl * ((x[q + 16 * half + l]! >> shift) & 3)) - ml);
      }
      shift += 2;
    }
    q += 32;
  }
}

// =============================== Q3_K: hmask[32], qs[64], scales[12] (16 × 6-bit), d — 110 B
const Q3 = { hmask: 0, qs: 32, scales: 96, d: 108, size: 110 } as const;

function q3kPackScale(y: Uint8Array, so: number, j: number, l: number): void {
  if (j < 8) y[so + j] = l & 0xf;
  else y[so + j - 8] |= (l & 0xf) << 4;
  y[so + (j % 4) + 8] |= (l >> 4) << (2 * (j >> 2));
}

function q3kScale(y: Uint8Array, so: number, j: number): number {
  const lo = j < 8 ? y[so + j]! & 0xf : y[so + j - 8]! >> 4;
  return toI8((lo | (((y[so + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4)) - 32);
}

function q3kFinish(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  const dAll = readF16(y, yo + Q3.d);
  for (let j = 0; j < 16; j++) {
    const d = f(dAll * q3kScale(y, yo + Q3.scales, j));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(x[xo + 16 * j + ii]! / d));
      Li[16 * j + ii] = Math.max(-4, Math.min(3, l)) + 4;
    }
  }
  y.fill(0, yo + Q3.hmask, yo + Q3.hmask + 32);
  // High bit of the first 32 values goes to bit 0 of hmask[0..31], the next 32 to bit 1, …
  let m = 0;
  let hm = 1;
  for (let j = 0; j < QK_K; j++) {
    if (Li[j]! > 3) {
      y[yo + Q3.hmask + m] |= hm;
      Li[j] = Li[j]! - 4;
    }
    if (++m === 32) { m = 0; hm <<= 1; }
  }
  pack2bit(Li, y, yo + Q3.qs);
}

function q3kRef(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3Quants(16, 4, x, xo + 16 * j, Li, 16 * j, true);
    const s = Math.abs(scales[j]!);
    if (s > amax) { amax = s; maxScale = scales[j]!; }
  }
  y.fill(0, yo + Q3.scales, yo + Q3.scales + 12);
  if (maxScale) {
    const iscale = f(-32 / maxScale);
    for (let j = 0; j < 16; j++) {
      let l = toI8(nearestInt(f(iscale * scales[j]!)));
      l = Math.max(-32, Math.min(31, l)) + 32;
      q3kPackScale(y, yo + Q3.scales, j, l);
    }
    writeF16(y, yo + Q3.d, fp32ToFp16(f(1 / iscale)));
  } else {
    writeF16(y, yo + Q3.d, fp32ToFp16(0));
  }
  q3kFinish(x, xo, y, yo);
}

function q3kImpl(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number): void {
  const sigma2 = f(f(2 * sumSquares(x, xo, QK_K)) / QK_K);
  for (let j = 0; j < 16; j++) {
    importance(weights, 16, qw, qo + 16 * j, x, xo + 16 * j, sigma2);
    let s = 0;
    for (let l = 0; l < 16; l++) s = f(s + weights[l]!);
    sw[j] = s;
    scales[j] = makeQxQuants(16, 4, x, xo + 16 * j, Li, 16 * j, 1, weights, 0);
  }
  y.fill(0, yo + Q3.scales, yo + Q3.scales + 12);
  const dBlock = makeQxQuants(16, 32, scales, 0, Lsi, 0, 1, sw, 0);
  for (let j = 0; j < 16; j++) q3kPackScale(y, yo + Q3.scales, j, Lsi[j]!);
  writeF16(y, yo + Q3.d, fp32ToFp16(dBlock));
  q3kFinish(x, xo, y, yo);
}

function q3kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  const dAll = readF16(x, xo + Q3.d);
  let q = xo + Q3.qs;
  let m = 1;
  let is = 0;
  for (let n = 0; n < QK_K; n += 128) {
    let shift = 0;
    for (let j = 0; j < 4; j++) {
      for (let half = 0; half < 2; half++) {
        const dl = f(dAll * q3kScale(x, xo + Q3.scales, is++));
        for (let l = 0; l < 16; l++) {
          const k = 16 * half + l;
          const v = ((x[q + k]! >> shift) & 3) - (x[xo + Q3.hmask + k]! & m ? 0 : 4);
          y[yo++] = f(dl * v);
        }
      }
      shift += 2;
      m <<= 1;
    }
    q += 32;
  }
}

// =============================== Q4_K / Q5_K: d, dmin, scales[12] (8 × 6-bit scale and min), [qh[32]], qs[128]
const Q4 = { d: 0, dmin: 2, scales: 4, qs: 16, size: 144 } as const;
const Q5 = { d: 0, dmin: 2, scales: 4, qh: 16, qs: 48, size: 176 } as const;

function packScaleMin(y: Uint8Array, so: number, j: number, ls: number, lm: number): void {
  if (j < 4) {
    y[so + j] = ls;
    y[so + j + 4] = lm;
  } else {
    y[so + j + 4] = (ls & 0xf) | ((lm & 0xf) << 4);
    y[so + j - 4] |= (ls >> 4) << 6;
    y[so + j] |= (lm >> 4) << 6;
  }
}

/** get_scale_min_k4: the 6-bit scale and min of sub-block j. */
export function scaleMinK4(q: Uint8Array, so: number, j: number): [number, number] {
  if (j < 4) return [q[so + j]! & 63, q[so + j + 4]! & 63];
  return [(q[so + j + 4]! & 0xf) | ((q[so + j - 4]! >> 6) << 4), (q[so + j + 4]! >> 4) | ((q[so + j]! >> 6) << 4)];
}

/** Sub-block search shared by Q4_K and Q5_K (nmax 15 or 31); writes scales, mins and Lu. */
function q45kSearchRef(x: Float32Array, xo: number, nmax: number, rmin: number, rdelta: number, nstep: number): void {
  for (let j = 0; j < 8; j++) {
    const avX = f(Math.sqrt(f(sumSquares(x, xo + 32 * j, 32) / 32)));
    for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + 32 * j + l]!));
    scales[j] = makeQkx2Quants(32, nmax, x, xo + 32 * j, weights, 0, Lu, 32 * j, mins, j, Laux, rmin, rdelta, nstep, false);
  }
}

function q45kScalesRef(y: Uint8Array, yo: number, L: { d: number; dmin: number; scales: number }): void {
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    if (scales[j]! > maxScale) maxScale = scales[j]!;
    if (mins[j]! > maxMin) maxMin = mins[j]!;
  }
  const invScale = maxScale > 0 ? f(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? f(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    const ls = Math.min(63, toU8(nearestInt(f(invScale * scales[j]!))));
    const lm = Math.min(63, toU8(nearestInt(f(invMin * mins[j]!))));
    packScaleMin(y, yo + L.scales, j, ls, lm);
  }
  writeF16(y, yo + L.d, fp32ToFp16(f(maxScale / 63)));
  writeF16(y, yo + L.dmin, fp32ToFp16(f(maxMin / 63)));
}

function q45kSearchImpl(x: Float32Array, xo: number, nmax: number, qw: Float32Array | null, qo: number): void {
  const sigma2 = f(f(2 * sumSquares(x, xo, QK_K)) / QK_K);
  const avX = f(Math.sqrt(sigma2));
  for (let j = 0; j < 8; j++) {
    if (qw) importance(weights, 32, qw, qo + 32 * j, x, xo + 32 * j, sigma2);
    else for (let l = 0; l < 32; l++) weights[l] = f(avX + Math.abs(x[xo + 32 * j + l]!));
    let s = 0;
    for (let l = 0; l < 32; l++) s = f(s + weights[l]!);
    sw[j] = s;
    scales[j] = makeQkx3Quants(32, nmax, x, xo + 32 * j, weights, 0, Lu, 32 * j, mins, j, Laux, -0.9, 0.05, 36, false);
  }
}

// Q5_K clamps the packed codes to 63 and Q4_K does not (they can only differ if a code wrapped below 0).
function q45kScalesImpl(y: Uint8Array, yo: number, L: { d: number; dmin: number; scales: number }, clamp: boolean): void {
  const dBlock = makeQpQuants(8, 63, scales, Ls, sw);
  const mBlock = makeQpQuants(8, 63, mins, Lm, sw);
  for (let j = 0; j < 8; j++) {
    packScaleMin(y, yo + L.scales, j, clamp ? Math.min(63, Ls[j]!) : Ls[j]!, clamp ? Math.min(63, Lm[j]!) : Lm[j]!);
  }
  writeF16(y, yo + L.d, fp32ToFp16(dBlock));
  writeF16(y, yo + L.dmin, fp32ToFp16(mBlock));
}

/** Final rounding with the stored (fp16) super-block scales: L = round((x + dmin·m)/(d·sc)). */
function q45kRequantize(x: Float32Array, xo: number, y: Uint8Array, yo: number, L: { d: number; dmin: number; scales: number }, nmax: number): void {
  const dAll = readF16(y, yo + L.d);
  const mAll = readF16(y, yo + L.dmin);
  for (let j = 0; j < 8; j++) {
    const [sc, m] = scaleMinK4(y, yo + L.scales, j);
    const d = f(dAll * sc);
    if (!d) continue;
    const dm = f(mAll * m);
    for (let ii = 0; ii < 32; ii++) {
      const l = nearestInt(f(f(x[xo + 32 * j + ii]! + dm) / d));
      Lu[32 * j + ii] = Math.max(0, Math.min(nmax, l));
    }
  }
}

function q4kPack(y: Uint8Array, yo: number): void {
  let q = yo + Q4.qs;
  for (let j = 0; j < QK_K; j += 64) {
    for (let l = 0; l < 32; l++) y[q + l] = Lu[j + l]! | (Lu[j + l + 32]! << 4);
    q += 32;
  }
}

function q5kPack(y: Uint8Array, yo: number): void {
  const qh = yo + Q5.qh;
  let ql = yo + Q5.qs;
  y.fill(0, qh, qh + 32);
  let m1 = 1;
  let m2 = 2;
  for (let n = 0; n < QK_K; n += 64) {
    for (let j = 0; j < 32; j++) {
      let l1 = Lu[n + j]!;
      if (l1 > 15) { l1 -= 16; y[qh + j] |= m1; }
      let l2 = Lu[n + j + 32]!;
      if (l2 > 15) { l2 -= 16; y[qh + j] |= m2; }
      y[ql + j] = l1 | (l2 << 4);
    }
    m1 <<= 2;
    m2 <<= 2;
    ql += 32;
  }
}

function q4kRef(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  q45kSearchRef(x, xo, 15, -1, 0.1, 20);
  q45kScalesRef(y, yo, Q4);
  q45kRequantize(x, xo, y, yo, Q4, 15);
  q4kPack(y, yo);
}

function q4kImpl(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array | null, qo: number): void {
  q45kSearchImpl(x, xo, 15, qw, qo);
  q45kScalesImpl(y, yo, Q4, false);
  q45kRequantize(x, xo, y, yo, Q4, 15);
  q4kPack(y, yo);
}

function q5kRef(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  q45kSearchRef(x, xo, 31, -0.5, 0.1, 15);
  q45kScalesRef(y, yo, Q5);
  q45kRequantize(x, xo, y, yo, Q5, 31);
  q5kPack(y, yo);
}

function q5kImpl(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array | null, qo: number): void {
  q45kSearchImpl(x, xo, 31, qw, qo);
  q45kScalesImpl(y, yo, Q5, true);
  q45kRequantize(x, xo, y, yo, Q5, 31);
  q5kPack(y, yo);
}

function q4kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  const d = readF16(x, xo + Q4.d);
  const min = readF16(x, xo + Q4.dmin);
  let q = xo + Q4.qs;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(x, xo + Q4.scales, is);
    const [sc2, m2] = scaleMinK4(x, xo + Q4.scales, is + 1);
    const d1 = f(d * sc1), mm1 = f(min * m1), d2 = f(d * sc2), mm2 = f(min * m2);
    for (let l = 0; l < 32; l++) y[yo++] = f(f(d1 * (x[q + l]! & 0xf)) - mm1);
    for (let l = 0; l < 32; l++) y[yo++] = f(f(d2 * (x[q + l]! >> 4)) - mm2);
    q += 32;
  }
}

function q5kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  const d = readF16(x, xo + Q5.d);
  const min = readF16(x, xo + Q5.dmin);
  let ql = xo + Q5.qs;
  const qh = xo + Q5.qh;
  let u1 = 1;
  let u2 = 2;
  for (let is = 0; is < 8; is += 2) {
    const [sc1, m1] = scaleMinK4(x, xo + Q5.scales, is);
    const [sc2, m2] = scaleMinK4(x, xo + Q5.scales, is + 1);
    const d1 = f(d * sc1), mm1 = f(min * m1), d2 = f(d * sc2), mm2 = f(min * m2);
    for (let l = 0; l < 32; l++) y[yo++] = f(f(d1 * ((x[ql + l]! & 0xf) + (x[qh + l]! & u1 ? 16 : 0))) - mm1);
    for (let l = 0; l < 32; l++) y[yo++] = f(f(d2 * ((x[ql + l]! >> 4) + (x[qh + l]! & u2 ? 16 : 0))) - mm2);
    ql += 32;
    u1 <<= 2;
    u2 <<= 2;
  }
}

// =============================== Q6_K: ql[128], qh[64], scales[16] (int8), d — 210 B
const Q6 = { ql: 0, qh: 128, scales: 192, d: 208, size: 210 } as const;

function q6kBlock(x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array | null, qo: number): void {
  let maxScale = 0;
  let maxAbsScale = 0;
  for (let ib = 0; ib < 16; ib++) {
    const scale = makeQxQuants(16, 32, x, xo + 16 * ib, Li, 16 * ib, 1, qw, qo + 16 * ib);
    scales[ib] = scale;
    const a = Math.abs(scale);
    if (a > maxAbsScale) { maxAbsScale = a; maxScale = scale; }
  }
  if (maxAbsScale < GROUP_MAX_EPS) {
    y.fill(0, yo, yo + Q6.size);
    return;
  }
  const iscale = f(-128 / maxScale);
  writeF16(y, yo + Q6.d, fp32ToFp16(f(1 / iscale)));
  for (let ib = 0; ib < 16; ib++) y[yo + Q6.scales + ib] = toU8(Math.min(127, nearestInt(f(iscale * scales[ib]!))));
  const dAll = readF16(y, yo + Q6.d);
  for (let j = 0; j < 16; j++) {
    const d = f(dAll * toI8(y[yo + Q6.scales + j]!));
    if (!d) continue;
    for (let ii = 0; ii < 16; ii++) {
      const l = nearestInt(f(x[xo + 16 * j + ii]! / d));
      Li[16 * j + ii] = Math.max(-32, Math.min(31, l)) + 32;
    }
  }
  let ql = yo + Q6.ql;
  let qh = yo + Q6.qh;
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      const a = Li[j + l]!, b = Li[j + l + 32]!, c = Li[j + l + 64]!, e = Li[j + l + 96]!;
      y[ql + l] = (a & 0xf) | ((c & 0xf) << 4);
      y[ql + l + 32] = (b & 0xf) | ((e & 0xf) << 4);
      y[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
    ql += 64;
    qh += 32;
  }
}

function q6kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  const d = readF16(x, xo + Q6.d);
  let ql = xo + Q6.ql;
  let qh = xo + Q6.qh;
  let sc = xo + Q6.scales;
  for (let n = 0; n < QK_K; n += 128) {
    for (let l = 0; l < 32; l++) {
      const is = l >> 4;
      const h = x[qh + l]!;
      const q1 = ((x[ql + l]! & 0xf) | (((h >> 0) & 3) << 4)) - 32;
      const q2 = ((x[ql + l + 32]! & 0xf) | (((h >> 2) & 3) << 4)) - 32;
      const q3 = ((x[ql + l]! >> 4) | (((h >> 4) & 3) << 4)) - 32;
      const q4 = ((x[ql + l + 32]! >> 4) | (((h >> 6) & 3) << 4)) - 32;
      y[yo + l] = f(f(d * toI8(x[sc + is]!)) * q1);
      y[yo + l + 32] = f(f(d * toI8(x[sc + is + 2]!)) * q2);
      y[yo + l + 64] = f(f(d * toI8(x[sc + is + 4]!)) * q3);
      y[yo + l + 96] = f(f(d * toI8(x[sc + is + 6]!)) * q4);
    }
    yo += 128;
    ql += 64;
    qh += 32;
    sc += 8;
  }
}

// =============================== Q8_K: d (f32), qs[256] (int8), bsums[16] (int16) — 292 B
const Q8 = { d: 0, qs: 4, bsums: 260, size: 292 } as const;
const f32Buf = new Float32Array(1);
const f32Bytes = new Uint8Array(f32Buf.buffer);

function q8kBlock(x: Float32Array, xo: number, y: Uint8Array, yo: number): void {
  let max = 0;
  let amax = 0;
  for (let j = 0; j < QK_K; j++) {
    const ax = Math.abs(x[xo + j]!);
    if (ax > amax) { amax = ax; max = x[xo + j]!; }
  }
  if (!amax) {
    // ggml leaves bsums untouched here; so do we.
    y.fill(0, yo, yo + 4 + QK_K);
    return;
  }
  const iscale = f(-127 / max);
  for (let j = 0; j < QK_K; j++) y[yo + Q8.qs + j] = toU8(Math.min(127, nearestInt(f(iscale * x[xo + j]!))));
  for (let j = 0; j < 16; j++) {
    let sum = 0;
    for (let ii = 0; ii < 16; ii++) sum += toI8(y[yo + Q8.qs + 16 * j + ii]!);
    y[yo + Q8.bsums + 2 * j] = sum & 0xff;
    y[yo + Q8.bsums + 2 * j + 1] = (sum >> 8) & 0xff;
  }
  f32Buf[0] = 1 / iscale;
  y.set(f32Bytes, yo + Q8.d);
}

function q8kDequant(x: Uint8Array, xo: number, y: Float32Array, yo: number): void {
  f32Bytes.set(x.subarray(xo, xo + 4));
  const d = f32Buf[0]!;
  for (let j = 0; j < QK_K; j++) y[yo + j] = f(d * toI8(x[xo + Q8.qs + j]!));
}

// =============================== registration
type Plain = (x: Float32Array, xo: number, y: Uint8Array, yo: number) => void;
type Weighted = (x: Float32Array, xo: number, y: Uint8Array, yo: number, qw: Float32Array, qo: number) => void;
type Dequant = (x: Uint8Array, xo: number, y: Float32Array, yo: number) => void;

function kCodec(type: Codec['type'], typeSize: number, plain: Plain, weighted: Weighted | null, dequant: Dequant): Codec {
  return {
    type,
    blockSize: QK_K,
    typeSize,
    quantizeBlocks(src, dst, nRows, nPerRow, imatrix) {
      const nb = nPerRow / QK_K;
      for (let r = 0; r < nRows; r++) {
        for (let i = 0; i < nb; i++) {
          const xo = r * nPerRow + i * QK_K;
          const yo = (r * nb + i) * typeSize;
          if (imatrix && weighted) weighted(src, xo, dst, yo, imatrix, i * QK_K);
          else plain(src, xo, dst, yo);
        }
      }
    },
    dequantizeBlocks(src, dst, n) {
      for (let i = 0; i < n / QK_K; i++) dequant(src, i * typeSize, dst, i * QK_K);
    },
  };
}

export const K_CODECS: readonly Codec[] = [
  kCodec('Q2_K', Q2.size, q2kRef, q2kImpl, q2kDequant),
  kCodec('Q3_K', Q3.size, q3kRef, q3kImpl, q3kDequant),
  kCodec('Q4_K', Q4.size, q4kRef, q4kImpl, q4kDequant),
  kCodec('Q5_K', Q5.size, q5kRef, q5kImpl, q5kDequant),
  kCodec('Q6_K', Q6.size, (x, xo, y, yo) => q6kBlock(x, xo, y, yo, null, 0), q6kBlock, q6kDequant),
  // ggml_quantize_chunk has no Q8_K case: it is only ever made by from_float_ref, without weights.
  kCodec('Q8_K', Q8.size, q8kBlock, null, q8kDequant),
];

export { fp16ToFp32 };
