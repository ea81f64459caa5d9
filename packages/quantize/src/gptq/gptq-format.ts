// The GPTQ checkpoint layout that transformers (optimum/GPTQModel) and vLLM load for a linear layer of
// `out` × `in` (checkpoint_format "gptq", the v1 zero-point convention):
//   qweight int32 [in / (32/bits), out]  — codes packed along the input dimension, lowest bits first
//   qzeros  int32 [groups, out / (32/bits)] — (zero − 1) packed along the output dimension, lowest bits first
//   scales  f16   [groups, out]
//   g_idx   int32 [in]                   — group of each input column
// and value = scale[g_idx[i], o] · (q[i, o] − (stored_zero[g_idx[i], o] + 1)).
import { f32ToF16Bits } from '@qtk/core';
import type { IntSolveResult } from './int-solver.js';

export const GPTQ_FORMAT = {
  bits: [2, 4, 8],
  /** Group sizes the loaders' kernels take; −1 is one group per row. */
  groupSizes: [-1, 32, 64, 128],
  zeroOffset: 1,
  suffixes: ['qweight', 'qzeros', 'scales', 'g_idx'],
} as const;

export interface GptqTensors {
  qweight: { shape: [number, number]; bytes: Uint8Array };
  qzeros: { shape: [number, number]; bytes: Uint8Array };
  scales: { shape: [number, number]; bytes: Uint8Array };
  gIdx: { shape: [number]; bytes: Uint8Array };
}

/** Whether a linear of `out` × `in` fits the layout at these settings. */
export function gptqFits(out: number, inp: number, bits: number, groupSize: number): boolean {
  const pf = 32 / bits;
  const g = groupSize === -1 ? inp : groupSize;
  return inp % pf === 0 && out % pf === 0 && inp % g === 0;
}

/** Packs one solved linear (rows = outputs, columns = inputs) into the four tensors. */
export function packGptq(r: IntSolveResult, out: number, inp: number, bits: number): GptqTensors {
  const pf = 32 / bits;
  const nGroups = r.scale.length / out;
  const qw = new Uint32Array((inp / pf) * out);
  for (let o = 0; o < out; o++) {
    for (let i = 0; i < inp; i++) qw[Math.floor(i / pf) * out + o]! |= r.q[o * inp + i]! << (bits * (i % pf));
  }
  const qz = new Uint32Array(nGroups * (out / pf));
  const sc = new Uint16Array(nGroups * out);
  for (let g = 0; g < nGroups; g++) {
    for (let o = 0; o < out; o++) {
      qz[g * (out / pf) + Math.floor(o / pf)]! |= (r.zero[o * nGroups + g]! - GPTQ_FORMAT.zeroOffset) << (bits * (o % pf));
      sc[g * out + o] = f32ToF16Bits(r.scale[o * nGroups + g]!);
    }
  }
  const bytes = (a: Uint32Array | Uint16Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  return {
    qweight: { shape: [inp / pf, out], bytes: bytes(qw) },
    qzeros: { shape: [nGroups, out / pf], bytes: bytes(qz) },
    scales: { shape: [nGroups, out], bytes: bytes(sc) },
    gIdx: { shape: [inp], bytes: bytes(Int32Array.from(r.gIdx)) },
  };
}
