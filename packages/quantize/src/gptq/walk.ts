// GPTQ's column walk over slabs of rows: the fast form of the reference solvers (solver.ts, int-solver.ts).
// Rows are independent given U, so a slab of rows walks a lazy batch of columns together: inside the batch
// each row's columns are rounded and compensated one by one (O(rows·n·batch) in all, in TypeScript, f64),
// and the batch's errors E then reach every later column at once, w[:, i2:] −= E·U[i1:i2, i2:] — the
// O(rows·n²) part, one matrix product per batch (TrailingUpdate: f64 TypeScript in the reference's order,
// or an f32 ggml matmul).
import type { PreparedHessian } from './hessian.js';

/** Rounds walk column i of slab row r, whose working values (walk order, every earlier column's error
 *  already fed back) are `w`; returns the value the column dequantizes to. */
export type RoundColumn = (r: number, i: number, w: Float64Array) => number;

export interface TrailingUpdate {
  /** w[r][i2..to) −= Σ_k E[r][k]·U[i1+k][i2..to) for r < rows; w is rows × n, E is rows × (i2 − i1). */
  apply(w: Float64Array, rows: number, E: Float64Array, i1: number, i2: number, to: number): void;
  free?(): void;
}

/** The batch update in f64 TypeScript, in the reference solvers' order (so their bytes come out identical). */
export function trailingUpdateJs(h: PreparedHessian): TrailingUpdate {
  const { n, U } = h;
  return {
    apply(w, rows, E, i1, i2, to) {
      const B = i2 - i1;
      for (let r = 0; r < rows; r++) {
        const ro = r * n;
        for (let k0 = i1; k0 < i2; k0++) {
          const e = E[r * B + k0 - i1]!;
          if (e === 0) continue;
          const uk = k0 * n;
          for (let k = i2; k < to; k++) w[ro + k] -= e * U[uk + k]!;
        }
      }
    },
  };
}

export interface WalkOptions {
  /** Columns per lazy batch; the caller rounds it to whole blocks or groups. */
  batch: number;
  /** Rows walked together (default 128): bounds the working copy to slabRows × n f64. */
  slabRows?: number;
  update: TrailingUpdate;
  /** Columns entered together (a divisor of batch; default: the batch). */
  group?: number;
  /** Called for the slab's rows (w: rows × n, walk order) as the walk enters columns [i, i + group):
   *  every earlier column's error has reached them in every row. */
  enter?: (r0: number, rows: number, i: number, w: Float64Array) => void;
  /** Columns per inner batch (a divisor of group, 0 for none): inside the batch, each column's error reaches
   *  the rest of its inner batch at once and the inner batch's errors reach the rest of the batch through
   *  `update` — the same values in the same order per weight, with the bulk as a product. */
  inner?: number;
}

/** Walks nRows rows of W (row-major f32, storage order) through h's column order; `round` sees every column. */
export function gptqWalk(W: Float32Array, nRows: number, h: PreparedHessian, o: WalkOptions, round: RoundColumn): void {
  const { n, perm, U, dead } = h;
  const S = Math.max(1, Math.min(o.slabRows ?? 128, nRows));
  const w = new Float64Array(S * n);
  const E = new Float64Array(S * o.batch);
  const Es = new Float64Array(S * (o.inner ?? 0));
  for (let r0 = 0; r0 < nRows; r0 += S) {
    const rows = Math.min(S, nRows - r0);
    for (let r = 0; r < rows; r++) {
      const src = (r0 + r) * n, ro = r * n;
      for (let i = 0; i < n; i++) { const c = perm[i]!; w[ro + i] = dead[c] ? 0 : W[src + c]!; }
    }
    for (let i1 = 0; i1 < n; i1 += o.batch) {
      const i2 = Math.min(n, i1 + o.batch);
      const B = i2 - i1;
      const g = o.group ?? B;
      const inner = o.inner && o.inner < g ? o.inner : g;
      // each row sees the same sequence as in the reference: group entry, then its columns one by one
      for (let j1 = i1; j1 < i2; j1 += g) {
        const j2 = Math.min(i2, j1 + g);
        o.enter?.(r0, rows, j1, w);
        for (let s1 = j1; s1 < j2; s1 += inner) {
          const s2 = Math.min(j2, s1 + inner);
          const reach = inner < g ? s2 : i2;
          for (let r = 0; r < rows; r++) {
            const row = w.subarray(r * n, (r + 1) * n);
            for (let i = s1; i < s2; i++) {
              const x = row[i]!;
              const v = round(r0 + r, i, row);
              const e = (x - v) / U[i * n + i]!;
              E[r * B + i - i1] = e;
              const ui = i * n;
              for (let k = i + 1; k < reach; k++) row[k] -= e * U[ui + k]!;
            }
          }
          if (reach < i2) {
            const b = s2 - s1;
            for (let r = 0; r < rows; r++) for (let k = 0; k < b; k++) Es[r * b + k] = E[r * B + s1 - i1 + k]!;
            o.update.apply(w, rows, Es, s1, s2, i2);
          }
        }
      }
      if (i2 < n) o.update.apply(w, rows, E, i1, i2, n);
    }
  }
}
