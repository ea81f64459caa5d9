// GPTQ's fast path against its readable reference. The slab walk with the f64 TypeScript batch update must
// write the reference's bytes exactly (the slab and batch bookkeeping); with the f32 ggml matmul it must
// keep the reference's output error ‖(W − Ŵ)Xᵀ‖² and most of its bytes. The blocked factorization of the
// Hessian (ggml products, f32 storage) must give the reference's U within f32 accuracy.
import { describe, expect, it } from 'vitest';
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import { prepareHessian, type PreparedHessian } from '../src/gptq/hessian.js';
import { prepareHessianBlocked } from '../src/gptq/hessian-blocked.js';
import { gptqIntRows } from '../src/gptq/int-solver.js';
import { gptqIntSlabs, gptqQuantizeSlabs } from '../src/gptq/solve-slabs.js';
import { gptqQuantizeRows } from '../src/gptq/solver.js';
import { GgmlTrailingUpdate } from '../src/gptq/walk-ggml.js';
import { correlatedActivations, outputError, rng, ROW_KINDS } from './rows.js';

const N = 512;
const TOKENS = 768;

/** Tokens × n activations with correlated, unevenly scaled channels, and `deadCols` channels never active. */
function activations(n: number, seed: number, deadCols = 0): Float32Array {
  return correlatedActivations(TOKENS, n, 12, seed, (j) => j % 97 < deadCols);
}

function hessianOf(X: Float32Array, n: number): Float32Array {
  const H = new Float64Array(n * n);
  for (let t = 0; t < TOKENS; t++) {
    const o = t * n;
    for (let i = 0; i < n; i++) {
      const xi = (2 / TOKENS) * X[o + i]!;
      for (let j = 0; j < n; j++) H[i * n + j] += xi * X[o + j]!;
    }
  }
  return Float32Array.from(H);
}

function weights(n: number, nRows: number, seed: number): Float32Array {
  const r = rng(seed);
  const kinds = ['gaussian', 'wide', 'outlier', 'uniformPositive', 'negativeOnly'];
  const W = new Float32Array(nRows * n);
  for (let i = 0; i < nRows; i++) W.set(ROW_KINDS[kinds[i % kinds.length]!]!(n, r), i * n);
  return W;
}

const sameFraction = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let same = 0;
  for (let i = 0; i < a.length; i++) if (a[i] === b[i]) same++;
  return same / a.length;
};

function withGgml<T>(h: PreparedHessian, batch: number, slabRows: number, f: (u: GgmlTrailingUpdate) => T): T {
  const u = new GgmlTrailingUpdate(h, { batch, slabRows, threads: 2 });
  try {
    return f(u);
  } finally {
    u.free();
  }
}

describe('GPTQ slab walk', () => {
  const X = activations(N, 3, 2);
  const H = hessianOf(X, N);
  const nRows = 37; // not a multiple of the slab
  const W = weights(N, nRows, 9);

  for (const [type, actOrder, inner] of [['Q4_K', false, 0], ['Q4_K', false, 32], ['Q3_K', true, 32], ['IQ4_XS', false, 0], ['Q8_0', true, 32]] as [GgmlTypeName, boolean, number][]) {
    it(`${type}${actOrder ? ' act-order' : ''}${inner ? `, inner batches of ${inner}` : ''}: slabs with the f64 update write the reference's bytes`, () => {
      const h = prepareHessian(H, N, { groupSize: GGML_TYPES[type].blockSize, actOrder });
      const ref = gptqQuantizeRows(type, W, nRows, h, { dequantized: true });
      const fast = gptqQuantizeSlabs(type, W, nRows, h, { dequantized: true, slabRows: 8, inner });
      expect(Buffer.from(fast.bytes).equals(Buffer.from(ref.bytes))).toBe(true);
    });
  }

  for (const [bits, groupSize, descAct, inner] of [[4, 128, false, 0], [4, 128, false, 32], [3, 64, true, 32]] as [number, number, boolean, number][]) {
    it(`integer ${bits}-bit groups of ${groupSize}${descAct ? ' desc-act' : ''}${inner ? `, inner batches of ${inner}` : ''}: slabs with the f64 update give the reference's codes and scales`, () => {
      const h = prepareHessian(H, N, { groupSize: descAct ? 1 : groupSize, actOrder: descAct });
      const ref = gptqIntRows(W, nRows, h, { bits, groupSize });
      const fast = gptqIntSlabs(W, nRows, h, { bits, groupSize, slabRows: 5, inner });
      expect([Buffer.from(fast.q).equals(Buffer.from(ref.q)), Buffer.from(fast.scale.buffer).equals(Buffer.from(ref.scale.buffer)), Buffer.from(fast.zero).equals(Buffer.from(ref.zero))]).toEqual([true, true, true]);
    });
  }

  for (const type of ['Q4_K', 'Q3_K', 'IQ4_XS'] as GgmlTypeName[]) {
    it(`${type}: the ggml f32 update keeps the reference's output error and most of its bytes`, () => {
      const h = prepareHessian(H, N, { groupSize: GGML_TYPES[type].blockSize });
      const ref = gptqQuantizeRows(type, W, nRows, h, { dequantized: true });
      const fast = withGgml(h, 256, 16, (update) => gptqQuantizeSlabs(type, W, nRows, h, { dequantized: true, slabRows: 16, update, inner: 32 }));
      const e0 = outputError(W, ref.dequantized!, nRows, X, TOKENS, N), e1 = outputError(W, fast.dequantized!, nRows, X, TOKENS, N);
      expect(Math.abs(e1 / e0 - 1)).toBeLessThan(0.01);
      expect(sameFraction(fast.bytes, ref.bytes)).toBeGreaterThan(0.9);
    });
  }

  it('integer 4-bit groups: the ggml f32 update keeps the reference output error and most codes', () => {
    const h = prepareHessian(H, N, { groupSize: 128 });
    const ref = gptqIntRows(W, nRows, h, { bits: 4, groupSize: 128 });
    const fast = withGgml(h, 128, 16, (update) => gptqIntSlabs(W, nRows, h, { bits: 4, groupSize: 128, slabRows: 16, update, inner: 32 }));
    const e0 = outputError(W, ref.dequantized, nRows, X, TOKENS, N), e1 = outputError(W, fast.dequantized, nRows, X, TOKENS, N);
    expect(Math.abs(e1 / e0 - 1)).toBeLessThan(0.01);
    expect(sameFraction(fast.q, ref.q)).toBeGreaterThan(0.95);
  });
});

describe('blocked Hessian factorization', () => {
  const n = 384;
  const X = activations(n, 21, 1);
  const H = hessianOf(X, n);

  /** max |U − U_ref| / max |U_ref|, over each row (rows of U differ in scale by orders of magnitude). */
  function maxRowRelDiff(a: PreparedHessian, b: PreparedHessian): number {
    let worst = 0;
    for (let i = 0; i < n; i++) {
      let scale = 0, d = 0;
      for (let k = i; k < n; k++) {
        scale = Math.max(scale, Math.abs(b.U[i * n + k]!));
        d = Math.max(d, Math.abs(a.U[i * n + k]! - b.U[i * n + k]!));
      }
      worst = Math.max(worst, d / scale);
    }
    return worst;
  }

  for (const [blockSize, actOrder, groupSize] of [[64, false, 32], [100, true, 32], [384, false, 128]] as [number, boolean, number][]) {
    it(`blocks of ${blockSize}${actOrder ? ', act-order' : ''}: U within 1e-4 of the reference, same walk`, () => {
      const ref = prepareHessian(H, n, { groupSize, actOrder });
      const fast = prepareHessianBlocked(H, n, { groupSize, actOrder, blockSize, threads: 2 });
      expect([Array.from(fast.perm), Array.from(fast.dead), fast.damp]).toEqual([Array.from(ref.perm), Array.from(ref.dead), ref.damp]);
      expect(maxRowRelDiff(fast, ref)).toBeLessThan(1e-4);
    });
  }

  it('a rank-deficient Hessian (fewer tokens than columns) factors at the default damping, as the reference', () => {
    const Xs = X.subarray(0, 64 * n);
    const Hs = new Float32Array(n * n);
    for (let t = 0; t < 64; t++) for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) Hs[i * n + j] += (2 / 64) * Xs[t * n + i]! * Xs[t * n + j]!;
    const ref = prepareHessian(Hs, n, { groupSize: 32 });
    const fast = prepareHessianBlocked(Hs, n, { groupSize: 32, blockSize: 64, threads: 2 });
    expect([fast.damp, ref.damp]).toEqual([0.01, 0.01]);
    expect(maxRowRelDiff(fast, ref)).toBeLessThan(1e-3);
  });

  it('Q8_0 through the blocked factor and the ggml update: output error within 1% of the reference', () => {
    const nRows = 24;
    const W = weights(n, nRows, 4);
    const ref = gptqQuantizeRows('Q8_0', W, nRows, prepareHessian(H, n, { groupSize: 32 }), { dequantized: true });
    const hb = prepareHessianBlocked(H, n, { groupSize: 32, blockSize: 128, threads: 2 });
    const fast = withGgml(hb, 128, 8, (update) => gptqQuantizeSlabs('Q8_0', W, nRows, hb, { dequantized: true, slabRows: 8, update, inner: 32 }));
    const e0 = outputError(W, ref.dequantized!, nRows, X, TOKENS, n), e1 = outputError(W, fast.dequantized!, nRows, X, TOKENS, n);
    expect(Math.abs(e1 / e0 - 1)).toBeLessThan(0.01);
  });
});
