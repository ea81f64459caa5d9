// GPTQ inside ggml's block formats, the readable reference. Rows are independent given H, so each row walks
// its columns in the prepared order: when the walk enters a ggml block, the block's scales (and mins) are
// chosen by the codec's own importance-weighted search from the row's error-compensated weights; each
// column is then rounded under those fixed scales, and its error, scaled by U, is fed to the columns not
// yet visited — within the lazy batch at once, beyond it after the batch (Frantar et al. 2022, Alg. 1).
import type { GgmlTypeName } from '@qtk/core';
import { getCodec } from '../codecs/index.js';
import { blockGrid } from './grids.js';
import type { PreparedHessian } from './hessian.js';

export interface SolveOptions {
  /** Columns per lazy batch (default 128), rounded to whole ggml blocks. */
  block?: number;
  /** Also return what ggml will dequantize the bytes to. */
  dequantized?: boolean;
}

export interface SolveResult {
  bytes: Uint8Array;
  dequantized?: Float32Array;
}

/** GPTQ-quantizes nRows rows of n values (row-major f32) into `type` blocks. */
export function gptqQuantizeRows(
  type: GgmlTypeName, W: Float32Array, nRows: number, h: PreparedHessian, opts: SolveOptions = {}, out?: Uint8Array,
): SolveResult {
  const grid = blockGrid(type);
  const codec = getCodec(type);
  if (!grid || !codec) throw new Error(`GPTQ cannot round into ${type}`);
  const { n, perm, U, dead, importance } = h;
  const G = grid.blockSize;
  if (n % G !== 0) throw new RangeError(`rows of ${n} are not whole ${type} blocks of ${G}`);
  const nb = n / G;
  const rowBytes = nb * grid.typeSize;
  const bytes = out ?? new Uint8Array(nRows * rowBytes);
  const deq = opts.dequantized ? new Float32Array(nRows * n) : undefined;
  const batch = Math.max(G, Math.round((opts.block ?? 128) / G) * G);

  const w = new Float64Array(n); // walk order
  const err = new Float64Array(batch);
  const xs = new Float32Array(G); // one block in storage order, for the scale search
  const qw = new Float32Array(G);
  const levels = new Int16Array(G);
  const levelsByBlock = new Int16Array(n); // storage order
  const pos = new Int32Array(n); // storage column → position inside its block
  for (let c = 0; c < n; c++) pos[c] = c % G;

  for (let r = 0; r < nRows; r++) {
    const ro = r * n;
    for (let i = 0; i < n; i++) {
      const c = perm[i]!;
      w[i] = dead[c] ? 0 : W[ro + c]!;
    }
    const yRow = r * rowBytes;
    for (let i1 = 0; i1 < n; i1 += batch) {
      const i2 = Math.min(n, i1 + batch);
      for (let i = i1; i < i2; i++) {
        const c = perm[i]!;
        const blk = Math.floor(c / G);
        if ((i - i1) % G === 0) {
          // Entering a block: its G columns are perm[i..i+G) (the walk keeps blocks together), all of
          // them already compensated for every earlier column.
          for (let k = 0; k < G; k++) xs[pos[perm[i + k]!]!] = w[i + k]!;
          for (let k = 0; k < G; k++) qw[k] = importance[blk * G + k]!;
          codec.quantizeBlocks(xs, bytes.subarray(yRow + blk * grid.typeSize, yRow + (blk + 1) * grid.typeSize), 1, G, qw);
          grid.load(bytes, yRow + blk * grid.typeSize);
        }
        const x = w[i]!;
        const q = grid.level(pos[c]!, x);
        const v = grid.value(pos[c]!, q);
        levelsByBlock[c] = q;
        if (deq) deq[ro + c] = v;
        const e = (x - v) / U[i * n + i]!;
        err[i - i1] = e;
        const ui = i * n;
        for (let k = i + 1; k < i2; k++) w[k] -= e * U[ui + k]!;
        if ((i + 1 - i1) % G === 0) {
          levels.set(levelsByBlock.subarray(blk * G, (blk + 1) * G));
          grid.pack(levels, bytes, yRow + blk * grid.typeSize);
        }
      }
      // The batch's errors reach the columns after it in one pass.
      for (let k0 = i1; k0 < i2; k0++) {
        const e = err[k0 - i1]!;
        if (e === 0) continue;
        const uk = k0 * n;
        for (let k = i2; k < n; k++) w[k] -= e * U[uk + k]!;
      }
    }
  }
  return { bytes, dequantized: deq };
}
