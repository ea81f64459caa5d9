// ggml tensor types as in ggml 0.23 (ggml/include/ggml.h enum ggml_type, ggml/src/ggml.c type_traits).
// Ids 4, 5 (Q4_2, Q4_3), 31..33 (Q4_0_x_y) and 36..38 (IQ4_NL_x_y) were removed from ggml and are
// absent here on purpose: a GGUF that uses them is refused, as ggml refuses it.
// test/ggml-types.test.ts compares every entry with ggml itself through koffi.

export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4, quantized: false },
  F16: { id: 1, blockSize: 1, typeSize: 2, quantized: false },
  Q4_0: { id: 2, blockSize: 32, typeSize: 18, quantized: true },
  Q4_1: { id: 3, blockSize: 32, typeSize: 20, quantized: true },
  Q5_0: { id: 6, blockSize: 32, typeSize: 22, quantized: true },
  Q5_1: { id: 7, blockSize: 32, typeSize: 24, quantized: true },
  Q8_0: { id: 8, blockSize: 32, typeSize: 34, quantized: true },
  Q8_1: { id: 9, blockSize: 32, typeSize: 36, quantized: true },
  Q2_K: { id: 10, blockSize: 256, typeSize: 84, quantized: true },
  Q3_K: { id: 11, blockSize: 256, typeSize: 110, quantized: true },
  Q4_K: { id: 12, blockSize: 256, typeSize: 144, quantized: true },
  Q5_K: { id: 13, blockSize: 256, typeSize: 176, quantized: true },
  Q6_K: { id: 14, blockSize: 256, typeSize: 210, quantized: true },
  Q8_K: { id: 15, blockSize: 256, typeSize: 292, quantized: true },
  IQ2_XXS: { id: 16, blockSize: 256, typeSize: 66, quantized: true },
  IQ2_XS: { id: 17, blockSize: 256, typeSize: 74, quantized: true },
  IQ3_XXS: { id: 18, blockSize: 256, typeSize: 98, quantized: true },
  IQ1_S: { id: 19, blockSize: 256, typeSize: 50, quantized: true },
  IQ4_NL: { id: 20, blockSize: 32, typeSize: 18, quantized: true },
  IQ3_S: { id: 21, blockSize: 256, typeSize: 110, quantized: true },
  IQ2_S: { id: 22, blockSize: 256, typeSize: 82, quantized: true },
  IQ4_XS: { id: 23, blockSize: 256, typeSize: 136, quantized: true },
  I8: { id: 24, blockSize: 1, typeSize: 1, quantized: false },
  I16: { id: 25, blockSize: 1, typeSize: 2, quantized: false },
  I32: { id: 26, blockSize: 1, typeSize: 4, quantized: false },
  I64: { id: 27, blockSize: 1, typeSize: 8, quantized: false },
  F64: { id: 28, blockSize: 1, typeSize: 8, quantized: false },
  IQ1_M: { id: 29, blockSize: 256, typeSize: 56, quantized: true },
  BF16: { id: 30, blockSize: 1, typeSize: 2, quantized: false },
  TQ1_0: { id: 34, blockSize: 256, typeSize: 54, quantized: true },
  TQ2_0: { id: 35, blockSize: 256, typeSize: 66, quantized: true },
  MXFP4: { id: 39, blockSize: 32, typeSize: 17, quantized: true },
  NVFP4: { id: 40, blockSize: 64, typeSize: 36, quantized: true },
  Q1_0: { id: 41, blockSize: 128, typeSize: 18, quantized: true },
  Q2_0: { id: 42, blockSize: 64, typeSize: 18, quantized: true },
} as const;

/** ggml's GGML_TYPE_COUNT: ids run 0..GGML_TYPE_COUNT-1, with the removed ones absent. */
export const GGML_TYPE_COUNT = 43;

export type GgmlTypeName = keyof typeof GGML_TYPES;

const BY_ID = new Map<number, GgmlTypeName>(
  (Object.keys(GGML_TYPES) as GgmlTypeName[]).map((n) => [GGML_TYPES[n].id, n]),
);

export function isGgmlTypeId(id: number): boolean {
  return BY_ID.has(id);
}

/** Name for a ggml type id; throws a plain Error for ids ggml does not define (readers wrap it). */
export function ggmlTypeById(id: number): GgmlTypeName {
  const name = BY_ID.get(id);
  if (name === undefined) {
    throw new Error(`unknown ggml type id ${id} (ggml 0.23 defines ${[...BY_ID.keys()].join(', ')})`);
  }
  return name;
}

/** Case-insensitive lookup ("q4_k" → "Q4_K"); undefined when there is no such type. */
export function ggmlTypeByName(name: string): GgmlTypeName | undefined {
  const up = name.toUpperCase();
  return Object.prototype.hasOwnProperty.call(GGML_TYPES, up) ? (up as GgmlTypeName) : undefined;
}

/** Bytes of one row of `ne0` elements; throws if ne0 is not a whole number of blocks. */
export function ggmlRowBytes(type: GgmlTypeName, ne0: number): number {
  const t = GGML_TYPES[type];
  if (t === undefined) throw new Error(`unknown ggml type ${String(type)}`);
  if (!Number.isSafeInteger(ne0) || ne0 < 0) throw new Error(`row length ${ne0} is not a non-negative integer`);
  if (ne0 % t.blockSize !== 0) {
    throw new Error(`row length ${ne0} is not a multiple of ${type}'s block size ${t.blockSize}`);
  }
  return (ne0 / t.blockSize) * t.typeSize;
}

/** Bytes of a whole tensor with dims `ne` (ne0 first), unpadded, as ggml_nbytes for a contiguous tensor. */
export function ggmlTensorBytes(type: GgmlTypeName, ne: readonly number[]): number {
  if (ne.length === 0) throw new Error('a tensor needs at least one dimension');
  let rows = 1;
  for (let i = 1; i < ne.length; i++) {
    const n = ne[i]!;
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`dimension ${i} = ${n} is not a non-negative integer`);
    rows *= n;
  }
  const bytes = ggmlRowBytes(type, ne[0]!) * rows;
  if (!Number.isSafeInteger(bytes)) throw new Error(`tensor of ${type} [${ne.join(', ')}] is too large (${bytes} bytes)`);
  return bytes;
}

/** Bits per weight of a type (e.g. Q4_K → 4.5). */
export function ggmlBitsPerWeight(type: GgmlTypeName): number {
  const t = GGML_TYPES[type];
  return (t.typeSize * 8) / t.blockSize;
}
