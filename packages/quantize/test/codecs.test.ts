// Every codec against ggml itself (koffi → node-llama-cpp's libggml-base): the quantized bytes, with
// and without importance weights, and the dequantized floats must be identical.
import { describe, expect, it } from 'vitest';
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import { CODECS } from '../src/codecs/index.js';
import { ggmlOrOptOut } from './ggml-or-optout.js';
import { importanceWeights, rng, testMatrix } from './rows.js';

const ggml = ggmlOrOptOut();
const TYPES: GgmlTypeName[] = ['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_K', 'IQ4_NL', 'IQ4_XS'];
const N_PER_ROW = 512;
const ROWS_PER_KIND = 12;

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

function describeDiff(type: GgmlTypeName, ours: Uint8Array, theirs: Uint8Array, kinds: string[], label: string): string {
  const i = firstDiff(ours, theirs);
  if (i < 0) return 'identical';
  const rowBytes = (N_PER_ROW / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize;
  const row = Math.floor(i / rowBytes);
  let n = 0;
  for (let k = 0; k < ours.length; k++) if (ours[k] !== theirs[k]) n++;
  return `${type} ${label}: ${n} bytes differ; first at byte ${i} (row ${row}, kind ${kinds[row]}, offset in row ${i % rowBytes}): ours ${ours[i]} ggml ${theirs[i]}`;
}

describe.skipIf(ggml === null)('codecs are bit-exact with ggml', () => {
  const { data, nRows, kinds } = testMatrix(N_PER_ROW, ROWS_PER_KIND, 42);
  const imatrix = importanceWeights(N_PER_ROW, 7);

  it('ggml agrees with the type table', () => {
    for (const t of TYPES) {
      expect(ggml!.typeSize(t), t).toBe(GGML_TYPES[t].typeSize);
      expect(ggml!.blockSize(t), t).toBe(GGML_TYPES[t].blockSize);
      expect(CODECS.get(t)?.typeSize, t).toBe(GGML_TYPES[t].typeSize);
    }
  });

  for (const type of TYPES) {
    for (const weighted of [false, true]) {
      it(`${type} ${weighted ? 'with' : 'without'} importance weights`, () => {
        const codec = CODECS.get(type)!;
        const { blockSize, typeSize } = GGML_TYPES[type];
        const bytes = nRows * (N_PER_ROW / blockSize) * typeSize;
        const ours = new Uint8Array(bytes);
        const theirs = new Uint8Array(bytes);
        const qw = weighted ? imatrix : undefined;
        if (type === 'Q8_K') ggml!.quantizeRowQ8K(data, theirs, nRows * N_PER_ROW);
        else {
          if (!qw && ggml!.requiresImatrix(type)) return;
          ggml!.quantizeChunk(type, data, theirs, nRows, N_PER_ROW, qw);
        }
        codec.quantizeBlocks(data, ours, nRows, N_PER_ROW, type === 'Q8_K' ? undefined : qw);
        expect(describeDiff(type, ours, theirs, kinds, weighted ? 'weighted' : 'plain')).toBe('identical');

        const n = nRows * N_PER_ROW;
        const deqOurs = new Float32Array(n);
        const deqTheirs = new Float32Array(n);
        codec.dequantizeBlocks(theirs, deqOurs, n);
        if (type !== 'F32') ggml!.dequantize(type, theirs, deqTheirs, n);
        else deqTheirs.set(data);
        const a = new Uint8Array(deqOurs.buffer);
        const b = new Uint8Array(deqTheirs.buffer);
        expect(firstDiff(a, b), `${type} dequantize differs`).toBe(-1);
      });
    }
  }

  it('random raw f32 bit patterns round to f16/bf16 exactly as ggml (NaN, Inf, subnormals included)', () => {
    const r = rng(3);
    const bits = Uint32Array.from({ length: 1 << 16 }, () => Math.floor(r() * 4294967296));
    const src = new Float32Array(bits.buffer);
    for (const t of ['F16', 'BF16'] as const) {
      const ours = new Uint8Array(src.length * 2);
      const theirs = new Uint8Array(src.length * 2);
      CODECS.get(t)!.quantizeBlocks(src, ours, 1, src.length);
      ggml!.quantizeChunk(t, src, theirs, 1, src.length);
      expect(firstDiff(ours, theirs), t).toBe(-1);
    }
  });
});
