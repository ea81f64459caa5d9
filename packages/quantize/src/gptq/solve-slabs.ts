// The fast GPTQ solvers: the same per-column rounding as the references (solver.ts into ggml blocks,
// int-solver.ts into integer groups), driven by the slab walk (walk.ts), whose batch update is a matrix
// product. With trailingUpdateJs they reproduce the references byte for byte; with the ggml update the
// products are f32, so a few codes may differ, with the same output error (test/gptq-fast.test.ts).
import type { GgmlTypeName } from '@qtk/core';
import { getCodec } from '../codecs/index.js';
import { loadGgmlQuantizer, type GgmlQuantizer } from '../native/ggml-quantize.js';
import { blockGrid } from './grids.js';
import type { PreparedHessian } from './hessian.js';
import { groupScaleZero, intOutputs, type IntSolveOptions, type IntSolveResult } from './int-solver.js';
import type { SolveOptions, SolveResult } from './solver.js';
import { gptqWalk, trailingUpdateJs, type TrailingUpdate } from './walk.js';

export interface SlabOptions {
  /** The batch update (default: f64 TypeScript). */
  update?: TrailingUpdate;
  /** Rows walked together (default 128). */
  slabRows?: number;
  /** Inner batch columns (0: none, the reference's loop); used where it divides the block or group. */
  inner?: number;
}

const innerFor = (inner: number | undefined, G: number): number => (inner && G % inner === 0 ? inner : 0);

let native: GgmlQuantizer | null | undefined;
/** ggml's quantizers where the prebuilt library loads (the TS codecs are their bit-exact ports). */
function nativeQuantizer(): GgmlQuantizer | null {
  if (native === undefined) {
    try {
      native = loadGgmlQuantizer();
    } catch {
      native = null;
    }
  }
  return native;
}

/** Columns per lazy batch: `block` rounded to whole blocks or groups of G. */
export const batchColumns = (block: number | undefined, G: number): number => Math.max(G, Math.round((block ?? 128) / G) * G);

/** gptqQuantizeRows through the slab walk. */
export function gptqQuantizeSlabs(
  type: GgmlTypeName, W: Float32Array, nRows: number, h: PreparedHessian, opts: SolveOptions & SlabOptions = {}, out?: Uint8Array,
): SolveResult {
  const grid = blockGrid(type);
  const codec = getCodec(type);
  if (!grid || !codec) throw new Error(`GPTQ cannot round into ${type}`);
  const { n, perm, importance } = h;
  const G = grid.blockSize;
  if (n % G !== 0) throw new RangeError(`rows of ${n} are not whole ${type} blocks of ${G}`);
  const rowBytes = (n / G) * grid.typeSize;
  const bytes = out ?? new Uint8Array(nRows * rowBytes);
  const deq = opts.dequantized ? new Float32Array(nRows * n) : undefined;
  const S = Math.max(1, Math.min(opts.slabRows ?? 128, nRows));
  const ts = grid.typeSize;
  const xs = new Float32Array(S * G);
  const blockBytes = new Uint8Array(S * ts);
  const levels = new Int16Array(G);
  // per slab row: with inner batches the rows take turns inside a block
  const levelsByBlock = new Int16Array(S * n);
  let loadedAt = -1;
  const q = nativeQuantizer();
  // a block's columns are perm[i..i+G) for i a multiple of G (the walk keeps blocks together): on entering
  // it, the scale search runs for the slab's rows at once, on their compensated values in storage order
  const enter = (r0: number, rows: number, i: number, w: Float64Array) => {
    const blk = Math.floor(perm[i]! / G);
    for (let r = 0; r < rows; r++) for (let k = 0; k < G; k++) xs[r * G + (perm[i + k]! % G)] = w[r * n + i + k]!;
    const qw = importance.subarray(blk * G, (blk + 1) * G);
    if (q) q.quantizeChunk(type, xs.subarray(0, rows * G), blockBytes, rows, G, qw);
    else codec.quantizeBlocks(xs.subarray(0, rows * G), blockBytes, rows, G, qw);
    for (let r = 0; r < rows; r++) bytes.set(blockBytes.subarray(r * ts, (r + 1) * ts), (r0 + r) * rowBytes + blk * ts);
    loadedAt = -1;
  };
  const update = opts.update ?? trailingUpdateJs(h);
  gptqWalk(W, nRows, h, { batch: batchColumns(opts.block, G), slabRows: S, update, group: G, enter, inner: innerFor(opts.inner, G) }, (r, i, w) => {
    const c = perm[i]!;
    const blk = Math.floor(c / G);
    const at = r * rowBytes + blk * ts;
    if (at !== loadedAt) {
      grid.load(bytes, at);
      loadedAt = at;
    }
    const q = grid.level(c % G, w[i]!);
    const v = grid.value(c % G, q);
    const lo = (r % S) * n;
    levelsByBlock[lo + c] = q;
    if (deq) deq[r * n + c] = v;
    if ((i + 1) % G === 0) {
      levels.set(levelsByBlock.subarray(lo + blk * G, lo + (blk + 1) * G));
      grid.pack(levels, bytes, at);
    }
    return v;
  });
  return { bytes, dequantized: deq };
}

/** gptqIntRows through the slab walk. */
export function gptqIntSlabs(W: Float32Array, nRows: number, h: PreparedHessian, o: IntSolveOptions & SlabOptions): IntSolveResult {
  const { n, perm } = h;
  const G = o.groupSize;
  const { nGroups, maxq, q, scale, zero, deq, gIdx } = intOutputs(nRows, h, o);
  const update = o.update ?? trailingUpdateJs(h);
  gptqWalk(W, nRows, h, { batch: batchColumns(o.block, G), slabRows: o.slabRows, update, inner: innerFor(o.inner, G) }, (r, i, w) => {
    // the row's group scale and zero, kept in the outputs (with inner batches the rows take turns in a group)
    const gi = r * nGroups + Math.floor(i / G);
    if (i % G === 0) ({ scale: scale[gi], zero: zero[gi] } = groupScaleZero(w, i, i + G, maxq));
    const s = scale[gi]!, z = zero[gi]!;
    const c = perm[i]!;
    const code = Math.max(0, Math.min(maxq, Math.round(w[i]! / s) + z));
    q[r * n + c] = code;
    return (deq[r * n + c] = s * (code - z));
  });
  return { q, scale, zero, gIdx, dequantized: deq };
}
