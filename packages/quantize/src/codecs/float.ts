// Unquantized storage types: F32 (copy), F16 (ggml_fp32_to_fp16_row), BF16 (ggml_fp32_to_bf16_row_ref).
import type { Codec } from './types.js';
import { bf16ToFp32, fp16ToFp32, fp32ToBf16, fp32ToFp16 } from './numeric.js';

function halfCodec(type: 'F16' | 'BF16', enc: (x: number) => number, dec: (h: number) => number): Codec {
  return {
    type,
    blockSize: 1,
    typeSize: 2,
    quantizeBlocks(src, dst, nRows, nPerRow) {
      const n = nRows * nPerRow;
      for (let i = 0; i < n; i++) {
        const h = enc(src[i]!);
        dst[2 * i] = h & 0xff;
        dst[2 * i + 1] = h >>> 8;
      }
    },
    dequantizeBlocks(src, dst, n) {
      for (let i = 0; i < n; i++) dst[i] = dec(src[2 * i]! | (src[2 * i + 1]! << 8));
    },
  };
}

export const FLOAT_CODECS: readonly Codec[] = [
  {
    type: 'F32',
    blockSize: 1,
    typeSize: 4,
    quantizeBlocks(src, dst, nRows, nPerRow) {
      const n = nRows * nPerRow;
      dst.set(new Uint8Array(src.buffer, src.byteOffset, n * 4));
    },
    dequantizeBlocks(src, dst, n) {
      new Uint8Array(dst.buffer, dst.byteOffset, n * 4).set(src.subarray(0, n * 4));
    },
  },
  halfCodec('F16', fp32ToFp16, fp16ToFp32),
  halfCodec('BF16', fp32ToBf16, bf16ToFp32),
];
