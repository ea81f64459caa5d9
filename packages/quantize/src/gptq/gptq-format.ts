// The GPTQ checkpoint layout that transformers (optimum/GPTQModel) and vLLM load for a linear layer of
// `out` × `in` (checkpoint_format "gptq", the v1 zero-point convention):
//   qweight int32 [in / (32/bits), out]  — codes packed along the input dimension, lowest bits first
//   qzeros  int32 [groups, out / (32/bits)] — (zero − 1) packed along the output dimension, lowest bits first
//   scales  f16   [groups, out]
//   g_idx   int32 [in]                   — group of each input column
// and value = scale[g_idx[i], o] · (q[i, o] − (stored_zero[g_idx[i], o] + 1)).
import { f16BitsToF32, f32ToF16Bits } from '@qtk/core';
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

/** The weights a loader reconstructs from the four tensors: [out, in] row-major, scale·(q − (stored zero + 1)). */
export function unpackGptq(t: GptqTensors, out: number, inp: number, bits: number): Float32Array {
  const pf = 32 / bits, mask = (1 << bits) - 1;
  const u32 = (b: Uint8Array) => new Uint32Array(b.slice().buffer);
  const qw = u32(t.qweight.bytes), qz = u32(t.qzeros.bytes), gIdx = new Int32Array(t.gIdx.bytes.slice().buffer);
  const sc = new Uint16Array(t.scales.bytes.slice().buffer);
  const w = new Float32Array(out * inp);
  for (let i = 0; i < inp; i++) {
    const g = gIdx[i]!, shift = bits * (i % pf), qRow = Math.floor(i / pf) * out;
    for (let o = 0; o < out; o++) {
      const q = (qw[qRow + o]! >>> shift) & mask;
      const z = ((qz[g * (out / pf) + Math.floor(o / pf)]! >>> (bits * (o % pf))) & mask) + GPTQ_FORMAT.zeroOffset;
      w[o * inp + i] = f16BitsToF32(sc[g * out + o]!) * (q - z);
    }
  }
  return w;
}

/** The four tensors as one byte string (qweight, qzeros, scales, g_idx), for a checkpoint file. */
export function concatGptq(t: GptqTensors): Uint8Array {
  const parts = [t.qweight.bytes, t.qzeros.bytes, t.scales.bytes, t.gIdx.bytes];
  const all = new Uint8Array(parts.reduce((a, p) => a + p.byteLength, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.byteLength; }
  return all;
}

/** Bytes of the four tensors of an `out` × `inp` linear. */
export function gptqBytes(out: number, inp: number, bits: number, groups: number): number {
  const pf = 32 / bits;
  return 4 * (inp / pf) * out + 4 * groups * (out / pf) + 2 * groups * out + 4 * inp;
}

/** concatGptq's inverse. */
export function splitGptq(all: Uint8Array, out: number, inp: number, bits: number, groups: number): GptqTensors {
  const pf = 32 / bits;
  const sizes = [4 * (inp / pf) * out, 4 * groups * (out / pf), 2 * groups * out, 4 * inp];
  const at: Uint8Array[] = [];
  let o = 0;
  for (const s of sizes) { at.push(all.subarray(o, o + s)); o += s; }
  return {
    qweight: { shape: [inp / pf, out], bytes: at[0]! },
    qzeros: { shape: [groups, out / pf], bytes: at[1]! },
    scales: { shape: [groups, out], bytes: at[2]! },
    gIdx: { shape: [inp], bytes: at[3]! },
  };
}
