// From a layer input's Hessian H = 2XᵀX/n to what GPTQ's column walk needs: the walk order, and the
// upper Cholesky factor U of H⁻¹ in that order (H⁻¹ = UᵀU), after dead columns and damping
// (Frantar et al. 2022, Algorithm 1; the damping and retry follow GPTQModel).
import { QtkError } from '@qtk/core';

export interface PreparedHessian {
  /** Columns. */
  readonly n: number;
  /** perm[i]: the storage column visited i-th. */
  readonly perm: Int32Array;
  /** Upper Cholesky factor of H⁻¹ in walk order, row-major n×n (only i ≤ k is read); f64 from the
   *  reference, f32 from the blocked factorization (hessian-blocked.ts). */
  readonly U: Float64Array | Float32Array;
  /** Columns no calibration input reached (H_ii = 0): their weights are zeroed, as GPTQ does. */
  readonly dead: Uint8Array;
  /** diag(H) in storage order: the importance weights the scale searches see. */
  readonly importance: Float32Array;
  /** The damping that made H positive definite (a multiple of mean diag H). */
  readonly damp: number;
}

export interface PrepareOptions {
  /** Fraction of mean(diag H) added to the diagonal (default 0.01). */
  damp?: number;
  /** Columns per ggml block: the walk keeps each block's columns together (act-order sorts inside and across blocks). */
  groupSize: number;
  /** Visit blocks, and columns inside each block, by decreasing diag(H). */
  actOrder?: boolean;
}

/** In-place lower Cholesky of the n×n row-major `a`; false when it is not positive definite. */
export function choleskyLower(a: Float64Array, n: number): boolean {
  for (let j = 0; j < n; j++) {
    const rj = j * n;
    let s = a[rj + j]!;
    for (let k = 0; k < j; k++) s -= a[rj + k]! * a[rj + k]!;
    if (!(s > 0)) return false;
    const d = Math.sqrt(s);
    a[rj + j] = d;
    for (let i = j + 1; i < n; i++) {
      const ri = i * n;
      let t = a[ri + j]!;
      for (let k = 0; k < j; k++) t -= a[ri + k]! * a[rj + k]!;
      a[ri + j] = t / d;
    }
    for (let k = j + 1; k < n; k++) a[rj + k] = 0;
  }
  return true;
}

/** Inverse of a lower-triangular n×n (row-major, f64), by forward substitution column by column. */
export function invertLower(L: Float64Array, n: number): Float64Array {
  const Li = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    Li[j * n + j] = 1 / L[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let k = j; k < i; k++) s += L[i * n + k]! * Li[k * n + j]!;
      Li[i * n + j] = -s / L[i * n + i]!;
    }
  }
  return Li;
}

/** H⁻¹ from its lower Cholesky factor L (H = LLᵀ): H⁻¹ = L⁻ᵀL⁻¹. */
function inverseFromCholesky(L: Float64Array, n: number): Float64Array {
  const Li = invertLower(L, n);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let k = i; k < n; k++) s += Li[k * n + i]! * Li[k * n + j]!;
      inv[i * n + j] = s;
      inv[j * n + i] = s;
    }
  }
  return inv;
}

/** The walk order: blocks of `g` columns stay together; with act-order, heavier blocks and columns first. */
function walkOrder(diag: Float64Array, n: number, g: number, actOrder: boolean): Int32Array {
  const perm = new Int32Array(n);
  const blocks = [...Array(n / g).keys()];
  const weight = (b: number) => { let s = 0; for (let k = 0; k < g; k++) s += diag[b * g + k]!; return s; };
  if (actOrder) {
    const w = blocks.map(weight);
    blocks.sort((a, b) => w[b]! - w[a]! || a - b);
  }
  let i = 0;
  for (const b of blocks) {
    const cols = Array.from({ length: g }, (_, k) => b * g + k);
    if (actOrder) cols.sort((a, c) => diag[c]! - diag[a]! || a - c);
    for (const c of cols) perm[i++] = c;
  }
  return perm;
}

/** What every factorization starts from: the walk order, dead columns and the damped diagonal's scale. */
export interface HessianWalk {
  perm: Int32Array;
  dead: Uint8Array;
  /** diag(H), 1 on dead columns. */
  diag: Float64Array;
  /** mean of `diag`: the damping is a multiple of it. */
  mean: number;
}

export function hessianWalk(H: Float32Array | Float64Array, n: number, opts: PrepareOptions): HessianWalk {
  const g = opts.groupSize;
  if (n % g !== 0) throw new RangeError(`${n} columns are not a whole number of ${g}-column blocks`);
  const diag = new Float64Array(n);
  const dead = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    diag[i] = H[i * n + i]!;
    if (!(diag[i]! > 0)) { dead[i] = 1; diag[i] = 1; }
  }
  const perm = walkOrder(diag, n, g, Boolean(opts.actOrder));
  let mean = 0;
  for (let i = 0; i < n; i++) mean += diag[i]!;
  return { perm, dead, diag, mean: mean / n };
}

/** Damping grows tenfold until `factor` succeeds (calibration with fewer tokens than columns is singular);
 *  factor(λ) returns U for H + λ·mean·I in walk order, or undefined when that is not positive definite. */
export function dampedFactor(
  n: number, walk: HessianWalk, opts: PrepareOptions, factor: (lambda: number) => Float32Array | Float64Array | undefined,
): PreparedHessian {
  const damp = opts.damp ?? 0.01;
  for (let lambda = damp; lambda <= 1e3 * Math.max(damp, 1e-6); lambda *= 10) {
    const U = factor(lambda);
    if (U) return { n, perm: walk.perm, U, dead: walk.dead, importance: Float32Array.from(walk.diag), damp: lambda };
  }
  throw new QtkError(`Hessian of ${n} columns is not positive definite even with damping ${1e3 * damp}. Calibrate with more tokens (--calib-tokens)`);
}

/** H is n×n row-major, symmetric (f32 or f64); it is not modified. The readable reference: O(n³) in f64. */
export function prepareHessian(H: Float32Array | Float64Array, n: number, opts: PrepareOptions): PreparedHessian {
  const walk = hessianWalk(H, n, opts);
  const { perm, dead, diag, mean } = walk;
  return dampedFactor(n, walk, opts, (lambda) => {
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) {
      const pi = perm[i]!;
      for (let k = 0; k < n; k++) {
        const pk = perm[k]!;
        A[i * n + k] = dead[pi] || dead[pk] ? 0 : H[pi * n + pk]!;
      }
      A[i * n + i] = diag[pi]! + lambda * mean;
    }
    if (!choleskyLower(A, n)) return undefined;
    const inv = inverseFromCholesky(A, n);
    if (!choleskyLower(inv, n)) return undefined;
    // U = Lᵀ of H⁻¹'s lower factor, stored row-major (U[i][k] = L[k][i]).
    const U = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let k = i; k < n; k++) U[i * n + k] = inv[k * n + i]!;
    return U;
  });
}
