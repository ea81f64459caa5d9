// Quantizes a slab of rows on all cores: ggml's own quantizer through koffi `.async` (one worker call per
// row chunk) when node-llama-cpp's prebuilt ggml is present — its bytes equal the TS codecs' — and the
// TS codecs on this thread otherwise.
import type { GgmlTypeName } from '@qtk/core';
import { GGML_TYPES, decodeToF32 } from '@qtk/core';
import { getCodec } from './codecs/index.js';
import { loadGgmlQuantizer, type GgmlQuantizer } from './native/ggml-quantize.js';

export type EngineName = 'ggml' | 'ts';

export interface RowQuantizer {
  readonly name: EngineName;
  /** nRows rows of nPerRow values from src into dst; imatrix: nPerRow weights shared by the rows. */
  quantize(type: GgmlTypeName, src: Float32Array, dst: Uint8Array, nRows: number, nPerRow: number, imatrix?: Float32Array): Promise<void>;
  /** n values of a stored F32/F16/BF16 tensor slab as f32 (F16/BF16 converted in parallel by ggml when loaded). */
  toF32(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array, n: number): Promise<Float32Array>;
  /** true when the stored values are all finite; undefined when this engine cannot tell (callers scan the f32 values). */
  allFinite(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): Promise<boolean | undefined>;
}

async function tsToF32(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array): Promise<Float32Array> {
  return decodeToF32(type, bytes);
}

/** Rows per chunk: llama-quantize hands out chunks of at least 32·512 values; so do we. */
const MIN_CHUNK_VALUES = 32 * 512;

// ggml_quantize_chunk covers these; Q8_K is not one of them.
const NATIVE_TYPES = new Set<GgmlTypeName>(['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL', 'IQ4_XS']);

function nativeQuantizer(g: GgmlQuantizer, threads: number): RowQuantizer {
  return {
    name: 'ggml',
    async quantize(type, src, dst, nRows, nPerRow, imatrix) {
      if (!NATIVE_TYPES.has(type)) return tsQuantizer().quantize(type, src, dst, nRows, nPerRow, imatrix);
      const rowBytes = (nPerRow / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize;
      // Small chunks handed out as lanes free up (as llama.cpp's workers take them): no lane idles at a slab's tail.
      const rowsPerChunk = Math.max(1, 4 * Math.ceil(MIN_CHUNK_VALUES / nPerRow));
      const chunks: [number, number][] = [];
      for (let r = 0; r < nRows; r += rowsPerChunk) chunks.push([r, Math.min(rowsPerChunk, nRows - r)]);
      // At most `threads` calls in flight; each takes the next chunk when it finishes.
      let next = 0;
      const lane = async (): Promise<void> => {
        while (next < chunks.length) {
          const [r0, n] = chunks[next++]!;
          await g.quantizeChunkAsync(type, src.subarray(r0 * nPerRow, (r0 + n) * nPerRow), dst.subarray(r0 * rowBytes, (r0 + n) * rowBytes), n, nPerRow, imatrix);
        }
      };
      await Promise.all(Array.from({ length: Math.min(threads, chunks.length) }, lane));
    },
    async allFinite(type, bytes) {
      const esize = type === 'F32' ? 4 : 2;
      const per = Math.ceil(bytes.length / esize / threads / 4096) * 4096 * esize;
      const parts: Promise<boolean>[] = [];
      for (let i = 0; i < bytes.length; i += per) parts.push(g.validateAsync(type, bytes.subarray(i, Math.min(bytes.length, i + per))));
      return (await Promise.all(parts)).every(Boolean);
    },
    async toF32(type, bytes, n) {
      if (type === 'F32') return tsToF32(type, bytes);
      const out = new Float32Array(n);
      const per = Math.ceil(n / threads / 4096) * 4096;
      const parts: Promise<void>[] = [];
      for (let i = 0; i < n; i += per) {
        const k = Math.min(per, n - i);
        parts.push(g.toF32Async(type, bytes.subarray(2 * i, 2 * (i + k)), out.subarray(i, i + k), k));
      }
      await Promise.all(parts);
      return out;
    },
  };
}

function tsQuantizer(): RowQuantizer {
  return {
    name: 'ts',
    async quantize(type, src, dst, nRows, nPerRow, imatrix) {
      const codec = getCodec(type);
      if (!codec) throw new Error(`no codec for ${type}`);
      codec.quantizeBlocks(src, dst, nRows, nPerRow, imatrix);
    },
    toF32: (type, bytes) => tsToF32(type, bytes),
    allFinite: async () => undefined,
  };
}

/** 'auto': ggml when its prebuilt library loads, else the TS codecs. */
export function createRowQuantizer(engine: 'auto' | EngineName, threads: number): RowQuantizer {
  if (engine === 'ts') return tsQuantizer();
  const g = loadGgmlQuantizer();
  if (g) return nativeQuantizer(g, Math.max(1, threads));
  if (engine === 'ggml') throw new Error('ggml engine requested, but no prebuilt libggml-base was found for this platform');
  return tsQuantizer();
}
