// Seeded test rows for the codec tests: random and adversarial rows, and importance weights.

export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function gaussian(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/** Named row generators; each fills one row of n values. */
export const ROW_KINDS: Record<string, (n: number, r: () => number) => Float32Array> = {
  gaussian: (n, r) => Float32Array.from({ length: n }, () => 0.02 * gaussian(r)),
  wide: (n, r) => Float32Array.from({ length: n }, () => gaussian(r) * Math.exp(3 * gaussian(r))),
  uniformPositive: (n, r) => Float32Array.from({ length: n }, () => r()),
  zeros: (n) => new Float32Array(n),
  constant: (n) => new Float32Array(n).fill(0.37),
  negativeConstant: (n) => new Float32Array(n).fill(-1.5),
  outlier: (n, r) => {
    const a = Float32Array.from({ length: n }, () => 0.01 * gaussian(r));
    a[Math.floor(r() * n)] = 1e4;
    return a;
  },
  negativeOutlier: (n, r) => {
    const a = Float32Array.from({ length: n }, () => 0.01 * gaussian(r));
    a[Math.floor(r() * n)] = -3e4;
    return a;
  },
  tiny: (n, r) => Float32Array.from({ length: n }, () => 1e-30 * gaussian(r)),
  subnormal: (n, r) => Float32Array.from({ length: n }, () => 1e-40 * gaussian(r)),
  negativeOnly: (n, r) => Float32Array.from({ length: n }, () => -Math.abs(gaussian(r)) - 0.1),
  sparse: (n, r) => Float32Array.from({ length: n }, () => (r() < 0.9 ? 0 : gaussian(r))),
  blockZeros: (n, r) => Float32Array.from({ length: n }, (_, i) => (Math.floor(i / 32) % 3 === 0 ? 0 : gaussian(r))),
  integers: (n, r) => Float32Array.from({ length: n }, () => Math.round(8 * gaussian(r))),
  huge: (n, r) => Float32Array.from({ length: n }, () => 6e4 * gaussian(r)),
};

/** rowsPerKind rows of every kind, concatenated. */
export function testMatrix(nPerRow: number, rowsPerKind: number, seed: number): { data: Float32Array; nRows: number; kinds: string[] } {
  const r = rng(seed);
  const kinds: string[] = [];
  const rows: Float32Array[] = [];
  for (const [name, gen] of Object.entries(ROW_KINDS)) {
    for (let i = 0; i < rowsPerKind; i++) {
      rows.push(gen(nPerRow, r));
      kinds.push(name);
    }
  }
  const data = new Float32Array(rows.length * nPerRow);
  rows.forEach((row, i) => data.set(row, i * nPerRow));
  return { data, nRows: rows.length, kinds };
}

/** Importance weights like an imatrix: positive, spread over orders of magnitude, a few zeros. */
export function importanceWeights(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => (r() < 0.03 ? 0 : Math.exp(2 * gaussian(r))));
}

/**
 * tokens × n activations with correlated, unevenly scaled channels: `factors` shared Gaussian factors plus
 * noise, each channel scaled by e^(1.5·g); channels where `dead(j)` holds are never active.
 */
export function correlatedActivations(tokens: number, n: number, factors: number, seed: number, dead?: (j: number) => boolean): Float32Array {
  const r = rng(seed);
  const mix = Float32Array.from({ length: factors * n }, () => gaussian(r));
  const scale = Float32Array.from({ length: n }, (_, j) => (dead?.(j) ? 0 : Math.exp(1.5 * gaussian(r))));
  const X = new Float32Array(tokens * n);
  for (let t = 0; t < tokens; t++) {
    const z = Array.from({ length: factors }, () => gaussian(r));
    for (let j = 0; j < n; j++) {
      let s = 0.3 * gaussian(r);
      for (let k = 0; k < factors; k++) s += z[k]! * mix[k * n + j]!;
      X[t * n + j] = scale[j]! * s;
    }
  }
  return X;
}

/** ‖(W − Ŵ)Xᵀ‖² summed over nRows rows of n and `tokens` activation rows of n. */
export function outputError(W: Float32Array, Wq: Float32Array, nRows: number, X: Float32Array, tokens: number, n: number): number {
  let s = 0;
  for (let r = 0; r < nRows; r++) {
    for (let t = 0; t < tokens; t++) {
      let d = 0;
      for (let j = 0; j < n; j++) d += (W[r * n + j]! - Wq[r * n + j]!) * X[t * n + j]!;
      s += d * d;
    }
  }
  return s;
}
