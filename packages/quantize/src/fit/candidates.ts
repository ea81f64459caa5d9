// The types `--fit` may give a tensor: ggml types qtk quantizes bit-exactly, ordered by size, restricted
// as llama-quantize restricts them (rows a whole number of blocks; tensors it never quantizes keep theirs).
import { GGML_TYPES, alignUp, ggmlTensorBytes, type GgmlTypeName } from '@qtk/core';
import { allowsQuantization } from '../rules.js';

/** k-quants and IQ4_XS for 256-multiple rows, smallest first; Q8_0 is the top. */
export const FIT_TYPES_256 = ['Q2_K', 'Q3_K', 'IQ4_XS', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_0'] as const satisfies readonly GgmlTypeName[];
/** For rows that are a multiple of 32 only (llama-quantize's fallbacks for them). */
export const FIT_TYPES_32 = ['Q4_0', 'IQ4_NL', 'Q5_0', 'Q5_1', 'Q8_0'] as const satisfies readonly GgmlTypeName[];

/** GGUF data alignment: each tensor's bytes are padded to it. */
export const FIT_ALIGNMENT = 32;

export interface FitTensor {
  name: string;
  ne: number[];
  inType: GgmlTypeName;
  /** Candidate types, smallest first; one entry (the stored type) when the tensor is not quantized. */
  candidates: GgmlTypeName[];
  /** Padded bytes of each candidate. */
  bytes: number[];
}

export function fitCandidates(t: { name: string; ne: readonly number[]; type: GgmlTypeName }): FitTensor {
  const ne = [...t.ne];
  const fixed = (): FitTensor => ({ name: t.name, ne, inType: t.type, candidates: [t.type], bytes: [alignUp(ggmlTensorBytes(t.type, ne), FIT_ALIGNMENT)] });
  if (!allowsQuantization(t.name, ne)) return fixed();
  const ne0 = ne[0]!;
  const list: readonly GgmlTypeName[] = ne0 % 256 === 0 ? FIT_TYPES_256 : ne0 % 32 === 0 ? FIT_TYPES_32 : [];
  if (list.length === 0) return fixed(); // llama-quantize falls back to F16 for such rows
  const candidates = list.filter((c) => ne0 % GGML_TYPES[c].blockSize === 0);
  return { name: t.name, ne, inType: t.type, candidates, bytes: candidates.map((c) => alignUp(ggmlTensorBytes(c, ne), FIT_ALIGNMENT)) };
}
