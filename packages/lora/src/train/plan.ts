// --plan: what the run will read (steps, rows, tokens) and the memory it will need, printed before any
// work; the finished run prints its measured peak beside the estimate.
import type { LoraTarget } from '@qtk/core';
import type { DataOrder } from './data.js';
import type { TrainBatch } from './model.js';

export interface RunPlan {
  model: string;
  arch: string;
  steps: number;
  rowsPerStep: number;
  /** Input tokens the optimizer steps read (epochs counted), and the loss tokens among them. */
  trainTokens: number;
  lossTokens: number;
  evalTokens: number;
  evals: number;
  loraParams: number;
  /** Estimated peak resident memory, by part, in bytes (absent when no estimate is available). */
  memory?: { total: number; parts: Record<string, number> };
}

export function planRun(o: {
  modelFile: string; arch: string; targets: readonly LoraTarget[]; rank: number; seqLen: number; batch: number; steps: number;
  order: DataOrder; rows: readonly TrainBatch[]; evalRows: readonly TrainBatch[]; evalEvery?: number;
  memory?: RunPlan['memory'];
}): RunPlan {
  let trainTokens = 0, lossTokens = 0;
  for (let s = 0; s < o.steps; s++) {
    for (const r of o.order.rowsForStep(s)) {
      const row = o.rows[r]!;
      trainTokens += row.tokens.length;
      for (let k = 1; k < row.lossMask.length; k++) lossTokens += row.lossMask[k]!;
    }
  }
  const evalTokens = o.evalRows.reduce((a, r) => a + r.tokens.length, 0);
  const loraParams = o.targets.reduce((a, t) => a + o.rank * (t.inFeatures + t.outFeatures), 0);
  const evals = o.evalRows.length === 0 ? 0 : 2 + (o.evalEvery ? Math.floor((o.steps - 1) / o.evalEvery) : 0);
  return { model: o.modelFile, arch: o.arch, steps: o.steps, rowsPerStep: o.order.rowsPerStep, trainTokens, lossTokens, evalTokens, evals, loraParams, memory: o.memory };
}

export function formatBytes(n: number): string {
  return n >= 2 ** 30 ? `${(n / 2 ** 30).toFixed(2)} GiB` : `${(n / 2 ** 20).toFixed(1)} MiB`;
}

export function formatPlan(p: RunPlan): string {
  const lines = [
    `plan: ${p.steps} steps × ${p.rowsPerStep} rows = ${p.trainTokens} tokens (${p.lossTokens} in the loss); eval ${p.evalTokens} tokens`,
    `      LoRA ${p.loraParams} parameters (${formatBytes(p.loraParams * 16)} with gradients and AdamW state, f32)`,
  ];
  if (p.memory) {
    lines.push(`      memory ≈ ${formatBytes(p.memory.total)} peak: ${Object.entries(p.memory.parts).map(([k, v]) => `${k} ${formatBytes(v)}`).join(', ')}`);
  }
  return lines.join('\n');
}
