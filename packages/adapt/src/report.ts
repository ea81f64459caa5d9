// report.json (what the run measured, and its options: `qtk adapt --config report.json` reruns it) and
// report.md (the same for a reader), beside the loss plot the training stage drew.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { servingMemory, describeGguf, GgufReader } from '@qtk/core';
import { RUN_FILES } from '@qtk/lora';
import type { AdaptOptions } from './options.js';
import { optionsAsFlags } from './options.js';
import type { PipelineResult } from './pipeline.js';
import { gib, type AdaptPlan } from './plan.js';
import { writeFileAtomic } from '@qtk/core';

export interface AdaptReport {
  format: 'qtk-adapt-report/1';
  model: string;
  repo: string;
  options: Record<string, unknown>;
  files: { f16: string; merged: string; final: string; baseline?: string; adapter: string; plot: string };
  training: { base: string; steps: number; evalLossBefore?: number; evalLossAfter?: number; peakRssBytes: number; plannedBytes: number };
  heldOut: {
    tokens: number;
    /** Mean negative log-likelihood per token (ln of the perplexity) and perplexity, per model. */
    loss: Record<string, number>;
    ppl: Record<string, number>;
  };
  kld: { versus: 'merged'; mean: number; p99: number; max: number; tokens: number };
  final: { preset: string; fit?: { budget: number; contextBytes: number }; fileBytes: number; bitsPerWeight: number; mix: Record<string, number>; servingBytes: number; ctx: number; budget: number; withinBudget: boolean };
  stageSeconds: Record<string, number>;
  reusedStages: string[];
}

export async function writeReport(r: PipelineResult, a: { model: string; repo: string; runDir: string; opts: AdaptOptions; plan: AdaptPlan }): Promise<AdaptReport> {
  const rel = (f: string) => path.relative(a.runDir, f) || f;
  const plot = path.join(a.runDir, 'loss.png');
  await fs.copyFile(path.join(r.trainDir, RUN_FILES.plotPng), plot);
  const reader = await GgufReader.open(r.final);
  let servingBytes: number;
  try {
    const d = describeGguf(r.final, reader, reader.tensors, reader.dataOffset);
    servingBytes = servingMemory(d.shape, reader.tensors.reduce((s, t) => s + t.byteLength, 0), { ctx: a.opts.ctx, parallel: 1, kvType: 'f16' }).total;
  } finally {
    await reader.close();
  }
  const ppl: Record<string, number> = { base: r.eval.ppl.base, adapted: r.eval.ppl.merged, final: r.eval.ppl.final };
  if (r.eval.ppl.baseline !== undefined) ppl.baselineQuantized = r.eval.ppl.baseline;
  const usable = a.opts.vram - a.opts.headroom;
  const report: AdaptReport = {
    format: 'qtk-adapt-report/1',
    model: a.model,
    repo: a.repo,
    options: optionsAsFlags(a.opts),
    files: { f16: rel(r.f16), merged: rel(r.merged), final: rel(r.final), ...(r.baseline ? { baseline: rel(r.baseline) } : {}), adapter: rel(path.join(r.trainDir, RUN_FILES.gguf)), plot: rel(plot) },
    training: { base: r.train.trainBase, steps: r.train.steps, evalLossBefore: r.train.evalLossBefore, evalLossAfter: r.train.evalLossAfter, peakRssBytes: r.train.peakRssBytes, plannedBytes: a.plan.train.memory.total },
    heldOut: { tokens: r.eval.evalTokens, ppl, loss: Object.fromEntries(Object.entries(ppl).map(([k, v]) => [k, Math.log(v)])) },
    kld: { versus: 'merged', ...r.eval.kld },
    final: {
      preset: r.quantize.preset, ...(r.quantize.fit ? { fit: r.quantize.fit } : {}), fileBytes: r.quantize.fileBytes, bitsPerWeight: r.quantize.bitsPerWeight, mix: r.quantize.mix,
      servingBytes, ctx: a.opts.ctx, budget: usable, withinBudget: servingBytes <= usable,
    },
    stageSeconds: r.book.times(),
    reusedStages: r.book.reused,
  };
  await writeFileAtomic(path.join(a.runDir, 'report.json'), JSON.stringify(report, null, 2) + '\n');
  await writeFileAtomic(path.join(a.runDir, 'report.md'), reportMarkdown(report));
  return report;
}

const f4 = (x: number | undefined) => (x === undefined ? '—' : x.toFixed(4));

export function reportMarkdown(r: AdaptReport): string {
  const names: Record<string, string> = { base: 'base (unquantized)', adapted: 'adapted (merged, unquantized)', final: `final (${r.final.fit ? 'fit' : r.final.preset})`, baselineQuantized: 'base quantized with the final types' };
  const mix = Object.entries(r.final.mix).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ×${n}`).join(', ');
  return [
    `# qtk adapt: ${path.basename(r.model)} on ${path.basename(path.resolve(r.repo))}`,
    '',
    '## Held-out files (the dataset\'s eval split)',
    '',
    `${r.heldOut.tokens} scored tokens per model.`,
    '',
    '| model | eval loss (nats/token) | perplexity |',
    '| --- | ---: | ---: |',
    ...Object.keys(r.heldOut.ppl).map((k) => `| ${names[k] ?? k} | ${f4(r.heldOut.loss[k])} | ${f4(r.heldOut.ppl[k])} |`),
    '',
    `Training (${r.training.base === 'float' ? 'LoRA on the float base' : `QLoRA on ${r.training.base}`}, ${r.training.steps} steps): the trainer's eval loss ${f4(r.training.evalLossBefore)} → ${f4(r.training.evalLossAfter)}; peak RSS ${gib(r.training.peakRssBytes)} (planned step memory ${gib(r.training.plannedBytes)}).`,
    '',
    '![loss](loss.png)',
    '',
    '## Final file',
    '',
    `- ${r.files.final}: ${gib(r.final.fileBytes)}, ${r.final.bitsPerWeight.toFixed(2)} bits per weight, ${r.final.fit ? `fitted to ${gib(r.final.fit.budget)} with ${gib(r.final.fit.contextBytes)} kept for context` : `preset ${r.final.preset}`}`,
    `- tensor types: ${mix}`,
    `- KLD vs the merged model on held-out text: mean ${r.kld.mean.toFixed(6)}, 99th percentile ${r.kld.p99.toFixed(6)}, max ${r.kld.max.toFixed(6)} (${r.kld.tokens} tokens)`,
    `- serving memory at ctx ${r.final.ctx}: ${gib(r.final.servingBytes)} of a ${gib(r.final.budget)} budget (${r.final.withinBudget ? 'fits' : 'does NOT fit'})`,
    '',
    '## Time per stage',
    '',
    '| stage | seconds | this run |',
    '| --- | ---: | --- |',
    ...Object.entries(r.stageSeconds).map(([k, s]) => `| ${k} | ${s.toFixed(1)} | ${r.reusedStages.includes(k) ? 'reused' : 'ran'} |`),
    '',
    `Rerun: \`qtk adapt --config report.json -o <this folder>\` (same options; finished stages are reused).`,
    '',
  ].join('\n');
}
