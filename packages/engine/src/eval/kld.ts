// KL divergence of a model against a base model, by llama-perplexity --kl-divergence's conventions:
// the same windows and scored positions as perplexity; per token KL(base ‖ other) over the whole
// vocabulary, the target's probability change Δp, and whether both put the same token on top.
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { LogProbFile } from './logprob-file.js';
import { NllStats, scoredPositions, scoreWindow } from './perplexity.js';
import type { Session } from '../model/model.js';

export interface KldResult {
  count: number;
  pplBase: number;
  pplBaseError: number;
  ppl: number;
  pplError: number;
  /** PPL(other) − PPL(base) and its uncertainty (the covariance term as llama.cpp). */
  deltaPpl: number;
  deltaPplError: number;
  meanKld: number;
  meanKldError: number;
  maxKld: number;
  p99Kld: number;
  p999Kld: number;
  medianKld: number;
  /** Fraction of tokens where both models rank the same token first. */
  sameTop: number;
  sameTopError: number;
  rmsDeltaP: number;
}

/** llama.cpp's percentile: linear interpolation on the sorted values. */
export function percentile(sorted: readonly number[], fraction: number): number {
  if (fraction <= 0) return sorted[0]!;
  if (fraction >= 1) return sorted[sorted.length - 1]!;
  const p = fraction * (sorted.length - 1);
  const ip = Math.floor(p), f = p - ip;
  return (1 - f) * sorted[ip]! + f * sorted[Math.min(ip + 1, sorted.length - 1)]!;
}

const meanUnc = (sum: number, sum2: number, n: number): [number, number] => {
  const mean = sum / n;
  const v = sum2 / n - mean * mean;
  return [mean, v > 0 ? Math.sqrt(v / (n - 1)) : 0];
};

/**
 * The uncertainty of PPL(Q) − PPL(base), llama-perplexity's
 * sqrt(ppl²·σ²(a) + base²·σ²(b) − 2·ppl·base·cov(a, b)) with a, b the per-token NLLs and σ², cov those
 * of the mean (÷ n−1). That is the standard error of the mean of d = ppl·a − base·b, which is what is
 * computed here, from centred d in float64: expanded, the terms cancel catastrophically at large PPL
 * (a model against itself gave ± 16384 at PPL ≈ 1e12); this way identical models give exactly 0.
 */
export function deltaPplUncertainty(nll: ArrayLike<number>, nllBase: ArrayLike<number>, ppl: number, pplBase: number): number {
  const n = nll.length;
  if (n !== nllBase.length) throw new Error(`deltaPplUncertainty: ${n} NLLs against ${nllBase.length} base NLLs`);
  if (n < 2) return 0;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += ppl * nll[i]! - pplBase * nllBase[i]!;
  mean /= n;
  let ss = 0;
  for (let i = 0; i < n; i++) {
    const d = ppl * nll[i]! - pplBase * nllBase[i]! - mean;
    ss += d * d;
  }
  return Math.sqrt(ss / n / (n - 1));
}

/**
 * Pass 1 runs the base model and keeps its f32 log-probabilities of every scored position in a temp
 * file (vocab per token — the role of llama.cpp's --kl-divergence-base file; logprob-file.ts); pass 2
 * runs the other model with each window's base rows as a graph input, so KL, the argmax and
 * log p(target) are reduced in the graph and only one model is in memory at a time.
 */
export async function klDivergence(
  loadBase: () => Promise<Session>,
  loadOther: () => Promise<Session>,
  windows: number[][],
  onWindow?: (i: number, pass: 1 | 2) => void,
): Promise<KldResult> {
  const dir = await fs.mkdtemp(path.join(tmpdir(), 'qtk-kld-'));
  let file: LogProbFile | undefined;
  try {
    // file row of each window's first scored position
    const firstRow: number[] = [];
    let rows = 0;
    for (const w of windows) {
      firstRow.push(rows);
      rows += scoredPositions(w.length).length;
    }
    const rowsOf = (w: number) => {
      const first = scoredPositions(windows[w]!.length)[0]!;
      return { file: file!, row: (pos: number) => firstRow[w]! + pos - first };
    };
    const scored = (w: number) => scoredPositions(windows[w]!.length).length;

    let V = 0;
    const base = await loadBase();
    const baseStats = new NllStats();
    const baseTarget: number[] = [];
    const baseTop: number[] = [];
    try {
      V = base.model.params.nVocab;
      file = LogProbFile.create(path.join(dir, 'base-logprobs.f32'), rows, V);
      for (let w = 0; w < windows.length; w++) {
        for (const r of scoreWindow(base, windows[w]!, baseStats, { saveLogProbs: rowsOf(w) })) {
          baseTop.push(r.top);
          baseTarget.push(r.logProb);
        }
        file.release(firstRow[w]!, scored(w));
        onWindow?.(w, 1);
      }
    } finally {
      base.model.free();
      base.free();
    }

    const other = await loadOther();
    const stats = new NllStats();
    const klds: number[] = [];
    const nll: number[] = [];
    let sumKld = 0, sumKld2 = 0, sameTop = 0, sumDp2 = 0;
    try {
      if (other.model.params.nVocab !== V) throw new Error(`the two models have different vocabularies (${V} and ${other.model.params.nVocab} entries); KL divergence needs the same tokenizer`);
      let k = 0;
      for (let w = 0; w < windows.length; w++) {
        if (w + 1 < windows.length) file.willNeed(firstRow[w + 1]!, scored(w + 1));
        for (const r of scoreWindow(other, windows[w]!, stats, { base: rowsOf(w) })) {
          const kl = r.kl!;
          const dp = Math.exp(r.logProb) - Math.exp(baseTarget[k]!);
          klds.push(kl);
          sumKld += kl;
          sumKld2 += kl * kl;
          sumDp2 += dp * dp;
          nll.push(-r.logProb);
          if (r.top === baseTop[k]) sameTop++;
          k++;
        }
        file.release(firstRow[w]!, scored(w));
        onWindow?.(w, 2);
      }
    } finally {
      other.model.free();
      other.free();
    }

    const n = klds.length;
    klds.sort((a, b) => a - b);
    const [logPpl, logPplU] = meanUnc(stats.nll, stats.nll2, n);
    const [logBase, logBaseU] = meanUnc(baseStats.nll, baseStats.nll2, n);
    const ppl = Math.exp(logPpl), pplBase = Math.exp(logBase);
    const pplU = ppl * logPplU, baseU = pplBase * logBaseU;
    const [meanKld, meanKldU] = meanUnc(sumKld, sumKld2, n);
    const st = sameTop / n;
    return {
      count: n,
      pplBase, pplBaseError: baseU, ppl, pplError: pplU,
      deltaPpl: ppl - pplBase,
      // both NLLs from the same log-softmax, so a model against itself gives d = 0 exactly
      deltaPplError: deltaPplUncertainty(nll, baseTarget.map((lp) => -lp), ppl, pplBase),
      meanKld, meanKldError: meanKldU,
      maxKld: klds[n - 1]!, p99Kld: percentile(klds, 0.99), p999Kld: percentile(klds, 0.999),
      medianKld: n % 2 === 0 ? 0.5 * (klds[n / 2]! + klds[n / 2 - 1]!) : klds[Math.floor(n / 2)]!,
      sameTop: st, sameTopError: Math.sqrt((st * (1 - st)) / (n - 1)),
      rmsDeltaP: Math.sqrt(sumDp2 / n),
    };
  } finally {
    file?.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
