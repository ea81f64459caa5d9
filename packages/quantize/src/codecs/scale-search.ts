// ggml's scale searches for k-quants and weighted legacy quants (ggml-quants.c make_qx_quants,
// make_q3_quants, make_qkx2_quants, make_qkx3_quants, make_qp_quants), in float32 step by step.
// Arrays are passed with an offset so that hot loops never allocate.
import { f, nearestInt } from './numeric.js';

export const GROUP_MAX_EPS = f(1e-15);

/** The value of largest magnitude in x[xo..xo+n), with its sign (the first one on ties, as ggml); 0 for none. */
export function signedAbsMax(x: Float32Array, xo: number, n: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]!);
    if (ax > amax) { amax = ax; max = x[xo + i]!; }
  }
  return max;
}

/**
 * Symmetric scale for n values into L[lo+i] ∈ [0, 2·nmax) (stored as l + nmax). rmseType 0: plain
 * rounding; 1: weights qw or x² then a ±0.9 scale sweep; negative: one refinement and an early return.
 */
export function makeQxQuants(
  n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number, rmseType: number,
  qw: Float32Array | null, qo: number,
): number {
  const max = signedAbsMax(x, xo, n);
  const amax = Math.abs(max);
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  let iscale = f(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(f(iscale * x[xo + i]!));
      L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return f(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) { rmseType = -rmseType; returnEarly = true; }
  const weight = (i: number): number => {
    const xi = x[xo + i]!;
    if (qw) return qw[qo + i]!;
    return rmseType === 1 ? f(xi * xi) : rmseType === 2 ? 1 : rmseType === 3 ? Math.abs(xi) : f(Math.sqrt(Math.abs(xi)));
  };
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(f(iscale * x[xo + i]!));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
    const w = weight(i);
    sumlx = f(sumlx + f(f(w * x[xo + i]!) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  let scale = suml2 ? f(sumlx / suml2) : 0;
  if (returnEarly) return suml2 > 0 ? f(0.5 * f(scale + f(1 / iscale))) : f(1 / iscale);
  let best = f(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = f(-f(nmax + f(f(0.1) * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscale * x[xo + i]!));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = weight(i);
      sumlx = f(sumlx + f(f(w * x[xo + i]!) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    if (suml2 > 0 && f(sumlx * sumlx) > f(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(f(iscale * x[xo + i]!));
        L[lo + i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = f(sumlx / suml2);
      best = f(scale * sumlx);
    }
  }
  return scale;
}

/** Q3_K's symmetric search (no weights): x²-weighted coordinate descent on each L, 5 passes at most. */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array, lo: number, doRmse: boolean): number {
  const max = signedAbsMax(x, xo, n);
  const amax = Math.abs(max);
  if (amax < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    return 0;
  }
  const iscale = f(-nmax / max);
  if (doRmse) {
    let sumlx = 0;
    let suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(f(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      L[lo + i] = l;
      const w = f(xi * xi);
      sumlx = f(sumlx + f(f(w * xi) * l));
      suml2 = f(suml2 + f(f(w * l) * l));
    }
    for (let itry = 0; itry < 5; itry++) {
      let nChanged = 0;
      for (let i = 0; i < n; i++) {
        const xi = x[xo + i]!;
        const w = f(xi * xi);
        const Li = L[lo + i]!;
        let slx = f(sumlx - f(f(w * xi) * Li));
        if (slx > 0) {
          let sl2 = f(suml2 - f(f(w * Li) * Li));
          let newL = nearestInt(f(f(xi * sl2) / slx));
          newL = Math.max(-nmax, Math.min(nmax - 1, newL));
          if (newL !== Li) {
            slx = f(slx + f(f(w * xi) * newL));
            sl2 = f(sl2 + f(f(w * newL) * newL));
            if (sl2 > 0 && f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
              L[lo + i] = newL;
              sumlx = slx;
              suml2 = sl2;
              nChanged++;
            }
          }
        }
      }
      if (!nChanged) break;
    }
    for (let i = 0; i < n; i++) L[lo + i] = L[lo + i]! + nmax;
    return suml2 > 0 ? f(sumlx / suml2) : 0;
  }
  for (let i = 0; i < n; i++) {
    let l = nearestInt(f(iscale * x[xo + i]!));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[lo + i] = l + nmax;
  }
  return f(1 / iscale);
}

/**
 * Asymmetric (scale, min) search with weights: start from the range, then try nstep+1 scales and
 * solve the weighted least squares for scale and min at each; keep the best. Writes -min to out[outIdx].
 * `weights === null` means x² (make_qkx3's default); qkx2 always passes weights.
 */
const qkxW = new Float32Array(256);

function makeQkxQuants(
  n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array | null, wo: number,
  L: Uint8Array, lo: number, out: Float32Array, outIdx: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number, useMad: boolean, qkx3: boolean,
): number {
  rmin = f(rmin); // C passes float literals such as -0.9f
  rdelta = f(rdelta);
  // Weights into a local array once (x² when none are given, as make_qkx3_quants does).
  const w = qkxW;
  for (let i = 0; i < n; i++) w[i] = weights ? weights[wo + i]! : f(x[xo + i]! * x[xo + i]!);
  let min = x[xo]!;
  let max = x[xo]!;
  let sumW = w[0]!;
  let sumX = f(sumW * x[xo]!);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i]!;
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    sumW = f(sumW + w[i]!);
    sumX = f(sumX + f(w[i]! * xi));
  }
  if (min > 0) min = 0;
  if (qkx3 ? max <= min : max === min) {
    for (let i = 0; i < n; i++) L[lo + i] = 0;
    out[outIdx] = -min;
    return 0;
  }
  let iscale = f(nmax / f(max - min));
  let scale = f(1 / iscale);
  let bestError = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i]!;
    let l = nearestInt(f(iscale * f(xi - min)));
    l = l < 0 ? 0 : l > nmax ? nmax : l;
    L[lo + i] = l;
    let diff = f(f(f(scale * l) + min) - xi);
    diff = useMad ? Math.abs(diff) : f(diff * diff);
    bestError = f(bestError + f(w[i]! * diff));
  }
  if (nstep < 1) {
    out[outIdx] = -min;
    return scale;
  }
  for (let is = 0; is <= nstep; is++) {
    // min is the best min so far: later steps search around it, as in C.
    iscale = f(f(f(rmin + f(rdelta * is)) + nmax) / f(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i]!;
      let l = nearestInt(f(iscale * f(xi - min)));
      l = l < 0 ? 0 : l > nmax ? nmax : l;
      Laux[i] = l;
      const wl = f(w[i]! * l);
      sumL = f(sumL + wl);
      sumL2 = f(sumL2 + f(wl * l));
      sumXL = f(sumXL + f(wl * xi));
    }
    const D = f(f(sumW * sumL2) - f(sumL * sumL));
    if (D > 0) {
      let thisScale = f(f(f(sumW * sumXL) - f(sumX * sumL)) / D);
      let thisMin = f(f(f(sumL2 * sumX) - f(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = f(sumXL / sumL2);
      }
      let curError = 0;
      for (let i = 0; i < n; i++) {
        let diff = f(f(f(thisScale * Laux[i]!) + thisMin) - x[xo + i]!);
        diff = useMad ? Math.abs(diff) : f(diff * diff);
        curError = f(curError + f(w[i]! * diff));
      }
      if (curError < bestError) {
        for (let i = 0; i < n; i++) L[lo + i] = Laux[i]!;
        bestError = curError;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  out[outIdx] = -min;
  return scale;
}

export function makeQkx2Quants(
  n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array, wo: number,
  L: Uint8Array, lo: number, out: Float32Array, outIdx: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  return makeQkxQuants(n, nmax, x, xo, weights, wo, L, lo, out, outIdx, Laux, rmin, rdelta, nstep, useMad, false);
}

export function makeQkx3Quants(
  n: number, nmax: number, x: Float32Array, xo: number, weights: Float32Array | null, wo: number,
  L: Uint8Array, lo: number, out: Float32Array, outIdx: number, Laux: Uint8Array,
  rmin: number, rdelta: number, nstep: number, useMad: boolean,
): number {
  return makeQkxQuants(n, nmax, x, xo, weights, wo, L, lo, out, outIdx, Laux, rmin, rdelta, nstep, useMad, true);
}

/** Positive-only scale for the super-block's scales/mins (weights = the sub-blocks' weight sums). */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]!);
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  let iscale = f(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(f(iscale * x[i]!));
  const scale = f(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = f(x[i]! - f(scale * L[i]!));
    bestMse = f(bestMse + f(f(qw[i]! * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = f(f(f(f(0.1) * is) + nmax) / max);
    const scaleIs = f(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      let l = nearestInt(f(iscaleIs * x[i]!));
      l = Math.min(nmax, l);
      const diff = f(x[i]! - f(scaleIs * l));
      mse = f(mse + f(f(qw[i]! * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    let l = nearestInt(f(iscale * x[i]!));
    l = Math.min(nmax, l);
    L[i] = l; // stored as uint8, but the sums below use the int, as in C
    const w = qw[i]!;
    sumlx = f(sumlx + f(f(w * x[i]!) * l));
    suml2 = f(suml2 + f(f(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let nChanged = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i]!;
      const Li = L[i]!;
      let slx = f(sumlx - f(f(w * x[i]!) * Li));
      let sl2 = f(suml2 - f(f(w * Li) * Li));
      if (slx > 0 && sl2 > 0) {
        let newL = nearestInt(f(f(x[i]! * sl2) / slx));
        newL = Math.min(nmax, newL);
        if (newL !== Li) {
          slx = f(slx + f(f(w * x[i]!) * newL));
          sl2 = f(sl2 + f(f(w * newL) * newL));
          if (f(f(slx * slx) * suml2) > f(f(sumlx * sumlx) * sl2)) {
            L[i] = newL;
            sumlx = slx;
            suml2 = sl2;
            nChanged++;
          }
        }
      }
    }
    if (!nChanged) break;
  }
  return suml2 > 0 ? f(sumlx / suml2) : 0;
}
