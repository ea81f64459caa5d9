// Shapes and strides of ggml tensors, kept on the TypeScript side (reading struct ggml_tensor
// through FFI costs microseconds; these rules mirror ggml.c so a bad shape is caught before ggml).
import { GGML_TYPES, type GgmlTypeName } from '@qtk/core';
import type { Ptr } from './lib.js';

export type Dims = [number, number, number, number];

export interface Tensor {
  readonly ptr: Ptr;
  readonly type: GgmlTypeName;
  /** Elements per dimension, ne0 (fastest) first, always 4 entries. */
  readonly ne: Dims;
  /** Bytes between consecutive elements of each dimension (nb0 = type size for whole blocks). */
  readonly nb: Dims;
}

export function dims(ne: readonly number[]): Dims {
  if (ne.length < 1 || ne.length > 4) throw new Error(`a ggml tensor has 1..4 dimensions, got [${ne.join(', ')}]`);
  const out: Dims = [1, 1, 1, 1];
  ne.forEach((n, i) => {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`dimension ${i} = ${n} is not a non-negative integer`);
    out[i] = n;
  });
  return out;
}

export function contiguousStrides(type: GgmlTypeName, ne: Dims): Dims {
  const t = GGML_TYPES[type];
  if (ne[0] % t.blockSize !== 0) throw new Error(`row of ${ne[0]} ${type} elements is not a multiple of the block size ${t.blockSize}`);
  const nb1 = (ne[0] / t.blockSize) * t.typeSize;
  return [t.typeSize, nb1, nb1 * ne[1], nb1 * ne[1] * ne[2]];
}

export const nelements = (t: { ne: Dims }) => t.ne[0] * t.ne[1] * t.ne[2] * t.ne[3];
export const rowBytes = (type: GgmlTypeName, n: number) => (n / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize;

/** Bytes spanned by the tensor's elements (ggml_nbytes). */
export function nbytes(t: Tensor): number {
  const bs = GGML_TYPES[t.type].blockSize;
  if (t.ne.some((n) => n === 0)) return 0;
  let bytes = rowBytes(t.type, t.ne[0]);
  if (bs === 1) bytes = t.nb[0] * t.ne[0];
  for (let i = 1; i < 4; i++) bytes += (t.ne[i]! - 1) * t.nb[i]!;
  return bytes;
}

/** ggml_is_contiguous_n: dims above n are packed, dims of size 1 are ignored. */
export function isContiguousN(t: Tensor, n: number): boolean {
  const ts = GGML_TYPES[t.type];
  let next = ts.typeSize;
  if (t.ne[0] !== ts.blockSize && t.nb[0] !== next) return false;
  next *= t.ne[0] / ts.blockSize;
  for (let i = 1; i < 4; i++) {
    if (t.ne[i] !== 1) {
      if (i > n) {
        if (t.nb[i] !== next) return false;
        next *= t.ne[i]!;
      } else {
        next = t.ne[i]! * t.nb[i]!;
      }
    }
  }
  return true;
}
export const isContiguous = (t: Tensor) => isContiguousN(t, 0);
/** Rows are packed (each row contiguous), rows may be strided. */
export const isContiguousRows = (t: Tensor) => t.ne[0] === GGML_TYPES[t.type].blockSize || t.nb[0] === GGML_TYPES[t.type].typeSize;
export const isTransposed = (t: Tensor) => t.nb[0] > t.nb[1];

/** ggml_can_repeat: b's shape tiles a's (each a.ne[i] a multiple of b.ne[i]). */
export const canRepeat = (b: { ne: Dims }, a: { ne: Dims }) => nelements(b) === 0 || b.ne.every((n, i) => n !== 0 && a.ne[i]! % n === 0);

export const shapeText = (t: { ne: Dims; type?: string }) => `${t.type ?? ''}[${t.ne.join(', ')}]`;
