// The LoRA delta of one pair (the pair type itself is @qtk/core's, beside the GGUF LoRA format).
import type { LoraPair } from '@qtk/core';

export type { LoraPair };

/** delta = scale · B · A, [nOut, nIn] row-major, in f32 with float64 sums. */
export function loraDelta(p: LoraPair, out = new Float32Array(p.nOut * p.nIn)): Float32Array {
  const { rank: r, nIn, nOut, a, b, scale } = p;
  const row = new Float64Array(nIn);
  for (let o = 0; o < nOut; o++) {
    row.fill(0);
    for (let k = 0; k < r; k++) {
      const bk = b[o * r + k]!;
      if (bk === 0) continue;
      const ak = k * nIn;
      for (let i = 0; i < nIn; i++) row[i]! += bk * a[ak + i]!;
    }
    for (let i = 0; i < nIn; i++) out[o * nIn + i] = scale * row[i]!;
  }
  return out;
}
