// σ(PPL(Q) − PPL(base)) against llama-perplexity's own expression (tools/perplexity/perplexity.cpp:
// mean_and_uncertainty, covariance, ppl_diff_unc), and its behaviour where that expression cancels.
import { describe, expect, it } from 'vitest';
import { deltaPplUncertainty } from '../src/index.js';

/** llama-perplexity's ppl_diff_unc, expanded as it computes it (double precision). */
function llamaDeltaPplUnc(a: number[], b: number[]): { ppl: number; base: number; unc: number } {
  const n = a.length;
  const sum = (x: number[]) => x.reduce((s, v) => s + v, 0);
  const meanUnc = (s: number, s2: number) => {
    const f = s / n;
    const df = s2 / n - f * f;
    return [f, df > 0 && n > 10 ? Math.sqrt(df / (n - 1)) : 0] as const;
  };
  const [la, ua] = meanUnc(sum(a), sum(a.map((v) => v * v)));
  const [lb, ub] = meanUnc(sum(b), sum(b.map((v) => v * v)));
  const cov = (sum(a.map((v, i) => v * b[i]!)) / n - (sum(a) / n) * (sum(b) / n)) / (n - 1);
  const ppl = Math.exp(la), base = Math.exp(lb);
  const unc = Math.sqrt(ppl * ua * (ppl * ua) + base * ub * (base * ub) - 2 * ppl * base * cov);
  return { ppl, base, unc };
}

/** Deterministic per-token NLLs around `centre` (a small LCG, no Math.random). */
function nlls(n: number, centre: number, spread: number, seed: number): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return centre + spread * (s / 2 ** 32 - 0.5);
  });
}

describe('deltaPplUncertainty', () => {
  it('equals llama-perplexity\'s expression where that does not cancel', () => {
    const base = nlls(600, 1.8, 2, 1);
    const q = base.map((v, i) => v + 0.05 * Math.sin(i) + 0.01);
    const ref = llamaDeltaPplUnc(q, base);
    const got = deltaPplUncertainty(q, base, ref.ppl, ref.base);
    expect(got).toBeGreaterThan(0);
    expect(Math.abs(got - ref.unc) / ref.unc).toBeLessThan(1e-9);
  });

  it('is exactly 0 for a model against itself at PPL ≈ 1e12, where the expanded form cancels', () => {
    const a = nlls(600, 27.6, 8, 7); // ln(1e12) ≈ 27.6
    const ref = llamaDeltaPplUnc(a, a);
    expect(ref.ppl).toBeGreaterThan(1e11);
    expect(ref.unc).not.toBe(0); // the expanded form is left with rounding noise (± 16384 in the report)
    expect(deltaPplUncertainty(a, a, ref.ppl, ref.base)).toBe(0);
  });

  it('stays accurate for a small difference at PPL ≈ 1e12', () => {
    const base = nlls(600, 27.6, 8, 11);
    const q = base.map((v, i) => v + 1e-6 * Math.cos(i));
    const { ppl, base: pb } = llamaDeltaPplUnc(q, base);
    // to first order the d_i are ppl·(q_i − base_i): the exact value is ppl × the standard error of the mean of q − base
    const diff = q.map((v, i) => v - base[i]!);
    const m = diff.reduce((s, v) => s + v, 0) / diff.length;
    const se = Math.sqrt(diff.reduce((s, v) => s + (v - m) ** 2, 0) / diff.length / (diff.length - 1));
    const got = deltaPplUncertainty(q, base, ppl, pb);
    expect(Math.abs(got - ppl * se) / (ppl * se)).toBeLessThan(1e-3);
  });
});
