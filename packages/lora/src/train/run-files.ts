// The run folder's human-facing files: metrics.csv, loss.svg/loss.png and train.json, each replaced
// atomically so a reader (or an interrupted run) never sees half a file.
import * as path from 'node:path';
import { writeFileAtomic } from '@qtk/core';
import { renderLossChart } from './plot.js';
import type { TrainHistory } from './trainer.js';

export const RUN_FILES = {
  metrics: 'metrics.csv',
  plotSvg: 'loss.svg',
  plotPng: 'loss.png',
  trainJson: 'train.json',
  peftDir: 'adapter',
  gguf: 'adapter.gguf',
} as const;

/** Columns of metrics.csv; an eval-only row (step 0, before training) leaves the step columns empty. */
export const METRICS_COLUMNS = ['step', 'epoch', 'loss', 'lr', 'grad_norm', 'loss_tokens', 'tokens_seen', 'tokens_per_s', 'eval_loss', 'eval_ppl'] as const;

export function metricsCsv(h: TrainHistory): string {
  const rows = new Map<number, Record<string, string>>();
  const row = (step: number) => rows.get(step) ?? rows.set(step, { step: String(step) }).get(step)!;
  for (const s of h.steps) {
    Object.assign(row(s.step), {
      epoch: String(s.epoch), loss: s.loss.toPrecision(8), lr: s.lr.toPrecision(6), grad_norm: s.gradNorm.toPrecision(6),
      loss_tokens: String(s.lossTokens), tokens_seen: String(s.tokensSeen), tokens_per_s: s.tokensPerSecond.toFixed(1),
    });
  }
  for (const e of h.evals) Object.assign(row(e.step), { eval_loss: e.loss.toPrecision(8), eval_ppl: e.perplexity.toPrecision(8) });
  const lines = [METRICS_COLUMNS.join(',')];
  for (const step of [...rows.keys()].sort((a, b) => a - b)) lines.push(METRICS_COLUMNS.map((c) => rows.get(step)![c] ?? '').join(','));
  return lines.join('\n') + '\n';
}

export async function writeMetricsAndPlot(runDir: string, h: TrainHistory, title: string): Promise<void> {
  await writeFileAtomic(path.join(runDir, RUN_FILES.metrics), metricsCsv(h));
  const { svg, png } = await renderLossChart(h, title);
  await writeFileAtomic(path.join(runDir, RUN_FILES.plotSvg), svg);
  await writeFileAtomic(path.join(runDir, RUN_FILES.plotPng), png);
}
