// Perplexity and KL divergence by llama-perplexity's conventions (tools/perplexity/perplexity.cpp):
// each window is evaluated from an empty state; the logits of positions nCtx/2 .. nCtx-2 score the
// next token (nCtx/2 - 1 tokens per window); PPL = exp(mean NLL), its error = PPL × sqrt(var(NLL)/(N-1)).
import type { GraphHooks, Session } from '../model/model.js';
import { ScoreHead, type ScoredRow, type ScoreOptions } from './score-graph.js';

/** log softmax of one row at `target`, and the row's log-sum-exp (float64). */
export function logSoftmaxAt(row: Float32Array, target: number): number {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i]! > m) m = row[i]!;
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i]! - m);
  return row[target]! - m - Math.log(s);
}

/** Positions whose logits llama-perplexity scores in a window of nCtx tokens. */
export function scoredPositions(nCtx: number): number[] {
  const first = Math.floor(nCtx / 2);
  return Array.from({ length: nCtx - 1 - first }, (_, i) => first + i);
}

export class NllStats {
  count = 0;
  nll = 0;
  nll2 = 0;
  add(v: number): void {
    this.count++;
    this.nll += v;
    this.nll2 += v * v;
  }
  get ppl(): number {
    return Math.exp(this.nll / this.count);
  }
  /** llama-perplexity's "+/-": PPL × standard error of the mean NLL. */
  get pplError(): number {
    const mean = this.nll / this.count;
    const v = this.nll2 / this.count - mean * mean;
    return v > 0 ? Math.sqrt(v / (this.count - 1)) * this.ppl : 0;
  }
}

/**
 * Scores one window (fresh state) at llama-perplexity's positions, the log-softmax reduced in the
 * graph (score-graph.ts); adds each NLL to `stats` and returns the scored rows.
 */
export function scoreWindow(s: Session, window: number[], stats: NllStats, opts: ScoreOptions & { hooks?: GraphHooks } = {}): ScoredRow[] {
  s.reset();
  const head = new ScoreHead(window, opts, s.model.backend);
  s.eval(window, { logits: scoredPositions(window.length), hooks: head.hooks(opts.hooks) });
  for (const r of head.rows) stats.add(-r.logProb);
  return head.rows;
}
