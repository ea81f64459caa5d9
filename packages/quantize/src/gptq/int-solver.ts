// GPTQ into plain integer groups (the GPTQ checkpoint format of transformers/vLLM): per output row, groups of
// `groupSize` columns in walk order share an asymmetric scale and zero point, chosen from the row's
// error-compensated weights when the walk enters the group (min/max over the group, as GPTQ does); each
// column is then rounded to q ∈ [0, 2^bits − 1] and dequantizes to scale·(q − zero). Scales are rounded
// to f16 before the codes, since the file stores them in f16; zero points stay ≥ 1 because the v1 format
// stores zero − 1 in `bits` unsigned bits.
import { f32ToF16Bits, f16BitsToF32 } from '@qtk/core';
import type { PreparedHessian } from './hessian.js';

export interface IntSolveOptions {
  bits: number;
  /** Columns per group (the whole row when equal to the column count). */
  groupSize: number;
  /** Columns per lazy batch (default 128). */
  block?: number;
}

export interface IntSolveResult {
  /** Codes, row-major nRows × n in storage (input) order. */
  q: Uint8Array;
  /** f16-representable scale per row and group: nRows × nGroups. */
  scale: Float32Array;
  /** Zero point per row and group (1 … 2^bits − 1). */
  zero: Uint8Array;
  /** Group of each storage column. */
  gIdx: Int32Array;
  /** scale·(q − zero) in storage order (what the checkpoint's readers reconstruct, before their f16 math). */
  dequantized: Float32Array;
}

const f16 = (x: number): number => f16BitsToF32(f32ToF16Bits(x));

/** Scale and zero of one group from its current values (asymmetric, range including 0). */
export function groupScaleZero(xs: ArrayLike<number>, from: number, to: number, maxq: number): { scale: number; zero: number } {
  let lo = 0, hi = 0;
  for (let k = from; k < to; k++) { const v = xs[k]!; if (v < lo) lo = v; if (v > hi) hi = v; }
  if (lo === hi) { lo = -1; hi = 1; }
  let scale = f16((hi - lo) / maxq);
  if (!(scale > 0)) scale = f16(6.103515625e-5);
  let zero = Math.round(-lo / scale);
  if (zero < 1) {
    // All values (nearly) ≥ 0: keep code 0 one step below zero, as the v1 format cannot store zero 0.
    scale = Math.max(f16(hi / (maxq - 1)), f16(6.103515625e-5));
    zero = 1;
  }
  return { scale, zero: Math.min(zero, maxq) };
}

/** The empty outputs of an integer GPTQ run, and each storage column's group (walk position / group size). */
export function intOutputs(nRows: number, h: PreparedHessian, o: IntSolveOptions) {
  const { n, perm } = h;
  const G = o.groupSize;
  if (n % G !== 0) throw new RangeError(`rows of ${n} are not whole groups of ${G}`);
  const nGroups = n / G;
  const gIdx = new Int32Array(n);
  for (let i = 0; i < n; i++) gIdx[perm[i]!] = Math.floor(i / G);
  return {
    nGroups, maxq: (1 << o.bits) - 1, gIdx,
    q: new Uint8Array(nRows * n), scale: new Float32Array(nRows * nGroups), zero: new Uint8Array(nRows * nGroups), deq: new Float32Array(nRows * n),
  };
}

/** GPTQ-quantizes nRows rows of n values (row-major f32, storage order) into integer groups. */
export function gptqIntRows(W: Float32Array, nRows: number, h: PreparedHessian, o: IntSolveOptions): IntSolveResult {
  const { n, perm, U, dead } = h;
  const G = o.groupSize;
  const { nGroups, maxq, q, scale, zero, deq, gIdx } = intOutputs(nRows, h, o);
  // batches hold whole groups, so a group's scale sees every earlier column's error
  const batch = Math.max(G, Math.round((o.block ?? 128) / G) * G);
  const w = new Float64Array(n);
  const err = new Float64Array(batch);
  for (let r = 0; r < nRows; r++) {
    const ro = r * n;
    for (let i = 0; i < n; i++) { const c = perm[i]!; w[i] = dead[c] ? 0 : W[ro + c]!; }
    let s = 1, z = 0;
    for (let i1 = 0; i1 < n; i1 += batch) {
      const i2 = Math.min(n, i1 + batch);
      for (let i = i1; i < i2; i++) {
        if (i % G === 0) {
          ({ scale: s, zero: z } = groupScaleZero(w, i, i + G, maxq));
          scale[r * nGroups + i / G] = s;
          zero[r * nGroups + i / G] = z;
        }
        const c = perm[i]!;
        const x = w[i]!;
        const code = Math.max(0, Math.min(maxq, Math.round(x / s) + z));
        const v = s * (code - z);
        q[ro + c] = code;
        deq[ro + c] = v;
        const e = (x - v) / U[i * n + i]!;
        err[i - i1] = e;
        const ui = i * n;
        for (let k = i + 1; k < i2; k++) w[k] -= e * U[ui + k]!;
      }
      for (let k0 = i1; k0 < i2; k0++) {
        const e = err[k0 - i1]!;
        if (e === 0) continue;
        const uk = k0 * n;
        for (let k = i2; k < n; k++) w[k] -= e * U[uk + k]!;
      }
    }
  }
  return { q, scale, zero, gIdx, dequantized: deq };
}
