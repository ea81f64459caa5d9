// ggml's own quantizers (ggml_quantize_chunk) through FFI: bit-exact blocks as llama-quantize writes.
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import type { GgmlLib } from './lib.js';

/** Quantizes nRows rows of nPerRow f32 values to `type`; imatrix has nPerRow weights (required by some i-quants). */
export function ggmlQuantize(lib: GgmlLib, type: GgmlTypeName, src: Float32Array, nPerRow: number, imatrix?: Float32Array): Uint8Array {
  const t = GGML_TYPES[type];
  if (nPerRow % t.blockSize !== 0) throw new RangeError(`${type} needs rows that are a multiple of ${t.blockSize}; got ${nPerRow}`);
  if (src.length % nPerRow !== 0) throw new RangeError(`${src.length} values are not whole rows of ${nPerRow}`);
  if (imatrix && imatrix.length !== nPerRow) throw new RangeError(`imatrix has ${imatrix.length} entries for rows of ${nPerRow}`);
  if (!imatrix && lib.ggml_quantize_requires_imatrix(t.id)) throw new RangeError(`${type} requires an importance matrix`);
  const nRows = src.length / nPerRow;
  const dst = new Uint8Array((nPerRow / t.blockSize) * t.typeSize * nRows);
  lib.ggml_quantize_init(t.id);
  const written = Number(lib.ggml_quantize_chunk(t.id, src, dst, 0, nRows, nPerRow, imatrix ?? null));
  if (written !== dst.length) throw new Error(`ggml_quantize_chunk(${type}) wrote ${written} bytes, expected ${dst.length}`);
  return dst;
}
