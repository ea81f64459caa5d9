// The shape every codec implements: whole rows in, ggml blocks out (and back), over typed-array views.
import type { GgmlTypeName } from '@qtk/core';

export interface Codec {
  readonly type: GgmlTypeName;
  readonly blockSize: number;
  /** Bytes per block. */
  readonly typeSize: number;
  /**
   * Quantize nRows rows of nPerRow values (src.length ≥ nRows·nPerRow) into dst (nRows·rowBytes).
   * imatrix: nPerRow importance weights shared by every row; the path taken with and without it is
   * the one ggml_quantize_chunk takes.
   */
  quantizeBlocks(src: Float32Array, dst: Uint8Array, nRows: number, nPerRow: number, imatrix?: Float32Array): void;
  /** Dequantize the first n values held in src (n a multiple of blockSize), as ggml's to_float. */
  dequantizeBlocks(src: Uint8Array, dst: Float32Array, n: number): void;
}
