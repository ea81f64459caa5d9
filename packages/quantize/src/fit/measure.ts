// Error of each candidate type per tensor, measured by quantizing: Σ over rows and columns of
// w_j · (x − dequant(quant(x)))², with w_j the importance matrix's mean x_j² scaled to mean 1, or w_j = 1
// without one. The scaling keeps every tensor's error in the same units: unscaled, a tensor whose inputs
// are small (attn_output's mean x² is ~0.01 of the others' on the qwen3_5 fixture, ffn_down's ~0.35)
// looked tens of times cheaper to degrade than the tensors the matrix has no entry for (token_embd,
// output, MTP blocks: weight 1), took Q2_K, and the mix measured a higher KLD than the uniform preset.
// The matrix still decides which columns of a tensor matter, in the quantizer and in this sum.
// One slab of rows at a time; a tensor with more rows than SAMPLE_ROWS is measured on evenly spaced slabs
// and scaled up, so the pass costs about as much as one quantization of a few thousand rows per tensor.
import { GgufReader, QtkError, decodeToF32, ggmlRowBytes, type GgmlTypeName } from '@qtk/core';
import { getCodec } from '../codecs/index.js';
import type { RowQuantizer } from '../engine.js';
import type { FitTensor } from './candidates.js';

/** Rows measured per tensor at most. */
export const SAMPLE_ROWS = 4096;
/** f32 bytes per slab. */
const SLAB_BYTES = 8 << 20;

export async function measureErrors(
  reader: GgufReader, t: FitTensor, engine: RowQuantizer, weights: Float32Array | undefined,
): Promise<number[]> {
  if (t.candidates.length === 1) return [0];
  const info = reader.tensor(t.name);
  if (info.type !== 'F32' && info.type !== 'F16' && info.type !== 'BF16') {
    throw new QtkError(`${reader.path}: tensor ${t.name} is ${info.type}; --fit measures errors from F32/F16/BF16 weights. Pass the F16/BF16 GGUF from qtk convert`, { file: reader.path });
  }
  const ne0 = t.ne[0]!;
  const nRows = t.ne.slice(1).reduce((a, b) => a * b, 1);
  const rowsPerExpert = t.ne[1] ?? 1;
  const slabRows = Math.max(1, Math.min(nRows, Math.floor(SLAB_BYTES / (ne0 * 4))));
  const nSlabs = Math.ceil(nRows / slabRows);
  const take = Math.max(1, Math.min(nSlabs, Math.ceil(SAMPLE_ROWS / slabRows)));
  const inRow = ggmlRowBytes(info.type, ne0);
  const err = t.candidates.map(() => 0);
  // one expert's row of weights at a time (below); the scale is that of the whole matrix entry
  const total = weights ? weights.reduce((a, b) => a + b, 0) : 0;
  const norm = weights && total > 0 ? weights.length / total : 1;
  let measured = 0;
  const src = new Float32Array(slabRows * ne0);
  const back = new Float32Array(slabRows * ne0);
  for (let s = 0; s < take; s++) {
    const slab = Math.floor((s * nSlabs) / take);
    const r0 = slab * slabRows;
    const n = Math.min(slabRows, nRows - r0);
    const x = decodeToF32(info.type, await reader.readTensorRange(info, r0 * inRow, n * inRow), src.subarray(0, n * ne0));
    measured += n;
    for (let k = 0; k < t.candidates.length; k++) {
      const type = t.candidates[k] as GgmlTypeName;
      const q = new Uint8Array(n * ggmlRowBytes(type, ne0));
      // rows of one slab share one expert's weights (slabs are whole experts' rows or parts of one)
      const e = Math.floor(r0 / rowsPerExpert) * ne0;
      const w = weights && weights.length > ne0 ? weights.subarray(e, e + ne0) : weights;
      await engine.quantize(type, x, q, n, ne0, w);
      const y = back.subarray(0, n * ne0);
      getCodec(type)!.dequantizeBlocks(q, y, n * ne0);
      let sum = 0;
      for (let i = 0; i < n * ne0; i++) {
        const d = x[i]! - y[i]!;
        sum += (w ? w[i % ne0]! * norm : 1) * d * d;
      }
      err[k] += sum;
    }
  }
  const scale = nRows / measured;
  return err.map((e) => e * scale);
}
