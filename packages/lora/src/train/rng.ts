// Counter-based randomness: every draw is a pure function of (seed, what it is for), so a resumed run
// needs no generator state beyond the step it resumes at, and data order and dropout are reproducible.
import { mulberry32 } from '@qtk/core';

/** splitmix32-style hash of a seed and integer tags into a 32-bit value. */
export function mixSeed(seed: number, ...tags: number[]): number {
  let h = (seed >>> 0) ^ 0x9e3779b9;
  for (const t of tags) {
    h = Math.imul(h ^ (t >>> 0), 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
  }
  return h >>> 0;
}

export { mulberry32 };

/** Fisher–Yates permutation of 0..n-1 from one seed. */
export function permutation(n: number, seed: number): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  const r = mulberry32(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}
