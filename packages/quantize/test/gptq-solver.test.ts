// The GPTQ solver against ggml: with a diagonal Hessian (no error feedback) it must write the codec's own
// importance-weighted bytes; with a correlated one its bytes must dequantize in ggml to exactly the weights
// it used, and its output error on the calibration activations must be below importance-weighted rounding.
import { describe, expect, it } from 'vitest';
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import { getCodec } from '../src/codecs/index.js';
import { GPTQ_TYPES } from '../src/gptq/grids.js';
import { prepareHessian } from '../src/gptq/hessian.js';
import { gptqQuantizeRows } from '../src/gptq/solver.js';
import { loadGgmlQuantizer } from '../src/native/ggml-quantize.js';
import { correlatedActivations, importanceWeights, outputError, rng, ROW_KINDS } from './rows.js';

const ggml = loadGgmlQuantizer();
const N = 512;

/** Tokens × N activations with correlated, unevenly scaled channels (a few shared factors plus noise). */
function activations(tokens: number, seed: number): Float32Array {
  return correlatedActivations(tokens, N, 16, seed);
}

function hessianOf(X: Float32Array, tokens: number): Float64Array {
  const H = new Float64Array(N * N);
  for (let t = 0; t < tokens; t++) {
    const x = X.subarray(t * N, (t + 1) * N);
    for (let i = 0; i < N; i++) for (let j = 0; j < N; j++) H[i * N + j] += (2 / tokens) * x[i]! * x[j]!;
  }
  return H;
}

/** Weight-like rows (no all-zero sub-blocks, whose codes any level fits): two of each kind. */
function weights(seed: number): { W: Float32Array; nRows: number } {
  const r = rng(seed);
  const kinds = ['gaussian', 'wide', 'outlier', 'negativeOutlier', 'uniformPositive', 'negativeOnly', 'integers'];
  const W = new Float32Array(2 * kinds.length * N);
  kinds.forEach((k, i) => { W.set(ROW_KINDS[k]!(N, r), 2 * i * N); W.set(ROW_KINDS[k]!(N, r), (2 * i + 1) * N); });
  return { W, nRows: 2 * kinds.length };
}

describe('GPTQ solver in ggml block formats', () => {
  const { W, nRows } = weights(11);
  const tokens = 1024;
  const X = activations(tokens, 5);
  const H = hessianOf(X, tokens);
  const diagOnly = importanceWeights(N, 7).map((v) => v || 0.5); // no dead columns: GPTQ zeroes those

  for (const type of ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as GgmlTypeName[]) {
    // Values, not bytes: in a sub-block whose scale rounds to 0 every code dequantizes alike, and the codec
    // keeps its search's codes there.
    it(`${type}: a diagonal Hessian gives the codec's importance-weighted quantization`, () => {
      const Hd = new Float64Array(N * N);
      for (let i = 0; i < N; i++) Hd[i * N + i] = diagOnly[i]!;
      const h = prepareHessian(Hd, N, { groupSize: GGML_TYPES[type].blockSize, damp: 0 });
      const ours = gptqQuantizeRows(type, W, nRows, h).bytes;
      const theirs = new Uint8Array(ours.length);
      getCodec(type)!.quantizeBlocks(W, theirs, nRows, N, diagOnly);
      const a = new Float32Array(nRows * N), b = new Float32Array(nRows * N);
      getCodec(type)!.dequantizeBlocks(ours, a, nRows * N);
      getCodec(type)!.dequantizeBlocks(theirs, b, nRows * N);
      expect(a.filter((v, i) => v !== b[i]).length).toBe(0); // === : ±0 from a zero scale are the same weight
    });
  }

  for (const type of GPTQ_TYPES) {
    for (const actOrder of [false, true]) {
      it(`${type}${actOrder ? ' act-order' : ''}: ggml dequantizes the bytes to the weights the solver used`, () => {
        const h = prepareHessian(H, N, { groupSize: GGML_TYPES[type].blockSize, actOrder });
        const { bytes, dequantized } = gptqQuantizeRows(type, W, nRows, h, { dequantized: true });
        const back = new Float32Array(nRows * N);
        ggml!.dequantize(type, bytes, back, nRows * N);
        expect(Array.from(back)).toEqual(Array.from(dequantized!));
      });
    }
  }

  for (const type of GPTQ_TYPES) {
    it(`${type}: output error below importance-weighted rounding`, () => {
      const h = prepareHessian(H, N, { groupSize: GGML_TYPES[type].blockSize });
      const { dequantized } = gptqQuantizeRows(type, W, nRows, h, { dequantized: true });
      const rtnBytes = new Uint8Array(nRows * (N / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize);
      const codec = getCodec(type)!;
      codec.quantizeBlocks(W, rtnBytes, nRows, N, h.importance);
      const rtn = new Float32Array(nRows * N);
      codec.dequantizeBlocks(rtnBytes, rtn, nRows * N);
      const e = outputError(W, dequantized!, nRows, X, tokens, N), e0 = outputError(W, rtn, nRows, X, tokens, N);
      expect(e / e0).toBeLessThan(0.9);
    });
  }
});
