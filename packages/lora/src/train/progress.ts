// Training progress: one redrawn line on a TTY (step, loss, lr, tokens/s, ETA, memory), one JSON object
// per line with --json, and nothing but the final summary in a pipe.
import { progressEnabled } from '@qtk/core';
import { formatBytes, type RunPlan } from './plan.js';
import type { EvalRecord, StepRecord, TrainHistory } from './trainer.js';

export class TrainProgress {
  private readonly tty: boolean;
  private readonly start = performance.now();
  private firstStep?: number;

  constructor(private readonly o: { totalSteps: number; json: boolean; out: NodeJS.WritableStream; err: NodeJS.WriteStream; plan: RunPlan }) {
    this.tty = !o.json && progressEnabled(o.err);
  }

  private line(text: string): void {
    if (this.tty) this.o.err.write(`\r${text.slice(0, (this.o.err.columns || 120) - 1)}\x1b[K`);
  }

  step(r: StepRecord): void {
    this.firstStep ??= r.step - 1;
    const rss = process.memoryUsage.rss();
    if (this.o.json) {
      this.o.out.write(JSON.stringify({ type: 'step', ...r, rssBytes: rss }) + '\n');
      return;
    }
    const done = r.step - this.firstStep;
    const secs = (performance.now() - this.start) / 1000;
    const eta = done > 0 ? ((this.o.totalSteps - r.step) * secs) / done : 0;
    this.line(`step ${r.step}/${this.o.totalSteps} loss ${r.loss.toFixed(4)} lr ${r.lr.toExponential(2)} ${r.tokensPerSecond.toFixed(0)} tok/s ETA ${fmtSecs(eta)} mem ${formatBytes(rss)}`);
  }

  eval(r: EvalRecord): void {
    if (this.o.json) {
      this.o.out.write(JSON.stringify({ type: 'eval', ...r }) + '\n');
      return;
    }
    if (this.tty) {
      this.o.err.write('\r\x1b[K');
      this.o.err.write(`eval at step ${r.step}: loss ${r.loss.toFixed(4)}, perplexity ${r.perplexity.toFixed(3)} (${r.tokens} tokens)\n`);
    }
  }

  note(text: string): void {
    if (this.o.json) this.o.out.write(JSON.stringify({ type: 'note', text }) + '\n');
    else if (this.tty) this.o.err.write(`\r\x1b[K${text}\n`);
  }

  done(): void {
    if (this.tty) this.o.err.write('\r\x1b[K');
  }

  summary(s: { runDir: string; history: TrainHistory; peakRssBytes: number; seconds: number }): void {
    const e = s.history.evals;
    const planned = this.o.plan.memory?.total;
    if (this.o.json) {
      this.o.out.write(JSON.stringify({ type: 'done', runDir: s.runDir, evalLossBefore: e[0]?.loss, evalLossAfter: e.at(-1)?.loss, peakRssBytes: s.peakRssBytes, plannedBytes: planned, seconds: s.seconds }) + '\n');
      return;
    }
    const lines = [`trained ${s.history.steps.length} steps in ${fmtSecs(s.seconds)}: ${s.runDir}`];
    if (e.length > 0) lines.push(`eval loss ${e[0]!.loss.toFixed(4)} → ${e.at(-1)!.loss.toFixed(4)} (perplexity ${e[0]!.perplexity.toFixed(3)} → ${e.at(-1)!.perplexity.toFixed(3)})`);
    lines.push(`peak memory ${formatBytes(s.peakRssBytes)} measured${planned ? `, ${formatBytes(planned)} planned` : ''}`);
    this.o.out.write(lines.join('\n') + '\n');
  }
}

function fmtSecs(s: number): string {
  if (!Number.isFinite(s)) return '?';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(1)}s`;
}
