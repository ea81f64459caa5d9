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
  /** n values of a stored F32/F16/BF16 tensor slab as f32 in `out`, and whether they are all finite (undefined when
   *  this engine cannot tell: callers scan the f32 values). ggml checks and converts in parallel when loaded. */
  toF32(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array, n: number, out: Float32Array): Promise<{ values: Float32Array; finite: boolean | undefined }>;
}

async function tsToF32(type: 'F32' | 'F16' | 'BF16', bytes: Uint8Array, n: number, out: Float32Array) {
  return { values: decodeToF32(type, bytes, out.subarray(0, n)), finite: undefined };
}

/** Rows per chunk: llama-quantize hands out chunks of at least 32·512 values; so do we. */
const MIN_CHUNK_VALUES = 32 * 512;

// ggml_quantize_chunk covers these; Q8_K is not one of them.
const NATIVE_TYPES = new Set<GgmlTypeName>(['F32', 'F16', 'BF16', 'Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'IQ4_NL', 'IQ4_XS']);

function nativeQuantizer(g: GgmlQuantizer, threads: number): RowQuantizer {
  // One queue of row chunks for all quantize() calls, served by `threads` lanes: a caller may queue slab
  // k+1 before slab k is done, so no lane waits at a slab boundary.
  const queue: (() => Promise<unknown>)[] = [];
  let busy = 0;
  const pump = (): void => {
    while (busy < threads && queue.length > 0) {
      const job = queue.shift()!;
      busy++;
      void job().finally(() => { busy--; pump(); });
    }
  };
  return {
    name: 'ggml',
    async quantize(type, src, dst, nRows, nPerRow, imatrix) {
      if (!NATIVE_TYPES.has(type)) return tsQuantizer().quantize(type, src, dst, nRows, nPerRow, imatrix);
      const rowBytes = (nPerRow / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize;
      // One chunk per lane: slabs follow each other in the queue, so lanes need no small chunks to stay
      // busy, and each koffi async round trip idles a core (~0.1–0.5 ms). Measured: 2 chunks per slab on 2
      // lanes 14.4 s for Q4_K_M, guided chunks (~12 per slab) 15.2 s, 1 chunk 16.4 s.
      const minRows = Math.max(1, Math.ceil(MIN_CHUNK_VALUES / nPerRow));
      const done: Promise<number>[] = [];
      for (let r0 = 0; r0 < nRows; ) {
        const n = Math.min(nRows - r0, Math.max(minRows, Math.ceil(nRows / threads)));
        const at = r0;
        done.push(new Promise<number>((resolve, reject) => {
          queue.push(() => Promise.resolve()
            .then(() => g.quantizeChunkAsync(type, src.subarray(at * nPerRow, (at + n) * nPerRow), dst.subarray(at * rowBytes, (at + n) * rowBytes), n, nPerRow, imatrix))
            .then(resolve, reject));
        }));
        r0 += n;
      }
      pump();
      await Promise.all(done);
    },
    async toF32(type, bytes, n, into) {
      const out = into.subarray(0, n);
      const esize = type === 'F32' ? 4 : 2;
      if (type === 'F32') await tsToF32(type, bytes, n, out);
      // One conversion and one check per lane, all at once (fewer, larger calls measured faster than
      // checking and converting cache-sized parts in turn: each koffi async call costs tens of µs).
      const per = Math.ceil(n / threads / 4096) * 4096;
      const converted: Promise<void>[] = [], checked: Promise<boolean>[] = [];
      for (let i = 0; i < n; i += per) {
        const k = Math.min(per, n - i), part = bytes.subarray(esize * i, esize * (i + k));
        if (type !== 'F32') converted.push(g.toF32Async(type, part, out.subarray(i, i + k), k));
        checked.push(g.validateAsync(type, part));
      }
      await Promise.all(converted);
      return { values: out, finite: (await Promise.all(checked)).every(Boolean) };
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
    toF32: (type, bytes, n, out) => tsToF32(type, bytes, n, out),
  };
}

/** 'auto': ggml when its prebuilt library loads, else the TS codecs. */
export function createRowQuantizer(engine: 'auto' | EngineName, threads: number): RowQuantizer {
  if (engine === 'ts') return tsQuantizer();
  if (engine === 'ggml') return nativeQuantizer(loadGgmlQuantizer(), Math.max(1, threads));
  try {
    return nativeQuantizer(loadGgmlQuantizer(), Math.max(1, threads));
  } catch {
    return tsQuantizer(); // same bytes, slower; quantizeGguf prints a notice
  }
}
