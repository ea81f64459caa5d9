// The inverse of each value transform `qtk convert` applies, chosen so that converting the result again
// gives back the same f32 bits wherever f32 allows it.
import type { ValueOp } from '@qtk/core';

/** GGUF values → HF values for one transform (in place). */
export function invertValues(op: ValueOp | undefined, v: Float32Array): void {
  if (op === 'add_one') {
    // g − 1 is exact for g in [0.5, 2] (Sterbenz), so (g − 1) + 1 gives g back.
    for (let i = 0; i < v.length; i++) v[i] = v[i]! - 1;
  } else if (op === 'neg_exp') {
    for (let i = 0; i < v.length; i++) v[i] = aLogFor(v[i]!);
  }
}

/**
 * A_log with f32(−exp(A_log)) === a: log(−a) rounded to f32, nudged by a few ulps when exp's rounding
 * lands beside a (the convert side computes −exp in float64 and rounds once).
 */
export function aLogFor(a: number): number {
  const x = Math.fround(Math.log(-a));
  if (!Number.isFinite(x) || Math.fround(-Math.exp(x)) === a) return x;
  const bits = new Float32Array(1);
  const u = new Uint32Array(bits.buffer);
  bits[0] = x;
  const base = u[0]!;
  for (let d = 1; d <= 4; d++) {
    for (const s of [d, -d]) {
      u[0] = base + s;
      if (Math.fround(-Math.exp(bits[0]!)) === a) return bits[0]!;
    }
  }
  return x;
}

/** Rows of a [rows, cols] matrix back to HF order: GGUF row i holds HF row perm[i]. */
export function unpermuteRows(v: Float32Array, cols: number, perm: Int32Array | null): Float32Array {
  if (!perm) return v;
  const out = new Float32Array(v.length);
  for (let i = 0; i < perm.length; i++) out.set(v.subarray(i * cols, (i + 1) * cols), perm[i]! * cols);
  return out;
}

/** Columns inside every row back to HF order: GGUF column c holds HF column perm[c]. */
export function unpermuteCols(v: Float32Array, cols: number, perm: Int32Array | null): Float32Array {
  if (!perm) return v;
  const out = new Float32Array(v.length);
  for (let r = 0; r < v.length / cols; r++) for (let c = 0; c < cols; c++) out[r * cols + perm[c]!] = v[r * cols + c]!;
  return out;
}
