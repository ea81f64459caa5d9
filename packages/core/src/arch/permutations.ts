// Axis permutations the architecture tables apply while converting: perm[i] = the source index that
// output index i takes. Both are permutations within small blocks, so a converter can stream rows.

/**
 * Qwen3.5/Qwen3-Next Gated DeltaNet value heads, grouped → tiled. HF groups value heads by key head
 * (value head g*r + j belongs to key head g); ggml broadcasting pairs value head n with key head
 * n mod H_k. New head j*H_k + g takes old head g*r + j. `offset` leading entries (the Q and K
 * segments of in_proj_qkv / conv1d) stay in place.
 */
export function vHeadsGroupedToTiled(nKeyHeads: number, nValueHeads: number, headDim: number, offset = 0): Int32Array | null {
  if (nKeyHeads === nValueHeads) return null;
  if (nKeyHeads <= 0 || nValueHeads % nKeyHeads !== 0) {
    throw new Error(`value heads (${nValueHeads}) must be a multiple of key heads (${nKeyHeads})`);
  }
  const r = nValueHeads / nKeyHeads;
  const perm = new Int32Array(offset + nValueHeads * headDim);
  for (let i = 0; i < offset; i++) perm[i] = i;
  for (let j = 0; j < r; j++) {
    for (let g = 0; g < nKeyHeads; g++) {
      const dst = offset + (j * nKeyHeads + g) * headDim;
      const src = offset + (g * r + j) * headDim;
      for (let d = 0; d < headDim; d++) perm[dst + d] = src + d;
    }
  }
  return perm;
}

/**
 * Llama's Q/K rows from HF's rotate-half layout back to the interleaved pairs llama.cpp's RoPE uses:
 * per head, view rows as [2, hd/2] and transpose to [hd/2, 2] (llama.cpp's LlamaModel.permute).
 */
export function llamaRopeUnpermute(nHeads: number, rows: number): Int32Array {
  if (rows % (nHeads * 2) !== 0) throw new Error(`${rows} rows cannot be split into ${nHeads} heads of even size`);
  const hd = rows / nHeads;
  const half = hd / 2;
  const perm = new Int32Array(rows);
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) perm[h * hd + i * 2 + j] = h * hd + j * half + i;
    }
  }
  return perm;
}
