// `qtk adapt <hf-dir | gguf> <repo> --vram SIZE`: check the inputs, print the plan (and stop with --plan),
// run the stages (reusing finished ones), write the report, and with --serve serve the final model.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, assertOutputNotInput, fileError, onInterrupt } from '@qtk/core';
import { describeBase } from './describe.js';
import { optionsAsFlags, parseAdaptOptions, readAdaptConfig, type AdaptFlags, type AdaptOptions } from './options.js';
import type { PipelineResult } from './pipeline.js';
import { formatAdaptPlan, gib, planAdapt, type AdaptPlan } from './plan.js';
import type { AdaptReport } from './report.js';
import { writeFileAtomic } from '@qtk/core';

export interface AdaptArgs {
  model?: string;
  repo?: string;
  /** Run folder (default runs/<repo name>). */
  out?: string;
  /** A JSON of options (a report.json of an earlier run, or flags); command-line flags win. */
  config?: string;
  plan?: boolean;
  json?: boolean;
  serve?: boolean;
  port?: number;
  flags: AdaptFlags;
  /** Lines for the user (default stderr); the plan and the summary go to `print` (default stdout). */
  log?: (line: string) => void;
  print?: (line: string) => void;
  trainErr?: NodeJS.WriteStream;
}

export interface AdaptResult {
  plan: AdaptPlan;
  runDir?: string;
  pipeline?: PipelineResult;
  report?: AdaptReport;
}

export async function adaptMain(a: AdaptArgs): Promise<AdaptResult> {
  const log = a.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const print = a.print ?? ((l: string) => process.stdout.write(`${l}\n`));
  let flags = a.flags, model = a.model, repo = a.repo;
  if (a.config) {
    const c = await readAdaptConfig(a.config);
    const given = Object.fromEntries(Object.entries(a.flags).filter(([, v]) => v !== undefined));
    flags = { ...c.flags, ...given };
    model ??= c.model;
    repo ??= c.repo;
  }
  if (!model) throw new QtkError('no model: pass a Hugging Face model folder or a .gguf, e.g. `qtk adapt ./Qwen3.6-27B ./my-repo --vram 24GiB`');
  if (!repo) throw new QtkError('no repository: pass the folder of the code to adapt to, e.g. `qtk adapt ./Qwen3.6-27B ./my-repo --vram 24GiB`');
  const opts: AdaptOptions = parseAdaptOptions(flags);
  const base = await describeBase(model);

  const plan = planAdapt(base, opts);
  if (a.json && a.plan) print(JSON.stringify({ type: 'plan', ...plan }));
  else print(formatAdaptPlan(plan));
  if (a.plan) return { plan };
  if (!(await fs.stat(repo).catch(() => undefined))?.isDirectory()) throw fileError(repo, 'is not a folder', 'Pass the folder of the repository to adapt the model to');
  if (base.kind === 'config') throw new QtkError(`${model}: a config.json alone can be planned (--plan) but not adapted. Pass the model folder that holds it with the weights`, { file: model });

  const runDir = a.out ?? path.join('runs', path.basename(path.resolve(repo)));
  await assertOutputNotInput(runDir, [model], { flag: '-o', kind: 'dir' });
  await assertOutputNotInput(runDir, [repo], { flag: '-o', kind: 'dir', allowInsideInputDir: true });
  await fs.mkdir(runDir, { recursive: true });
  // the options as a config file, before any work: a crashed run is repeated with --config adapt.json
  await writeFileAtomic(path.join(runDir, 'adapt.json'), JSON.stringify({ format: 'qtk-adapt-config/1', model, repo, options: optionsAsFlags(opts) }, null, 2) + '\n');

  // Ctrl-C / SIGTERM: each stage's own policy removes its temp output (training writes a checkpoint);
  // stages.json lists only finished stages, so the same command continues where this one stopped.
  // the stages load the engine, llama.cpp and the server: only once the plan is accepted
  const { runPipeline } = await import('./pipeline.js');
  const { writeReport } = await import('./report.js');
  const off = onInterrupt(() => `finished stages are kept in ${runDir}; run the same command again to continue`, 'adapt');
  let pipeline: PipelineResult;
  let report: AdaptReport;
  try {
    pipeline = await runPipeline({ base, repo, runDir, opts, plan, log, trainErr: a.trainErr });
    report = await writeReport(pipeline, { model, repo, runDir, opts, plan });
  } finally {
    off();
  }
  const h = report.heldOut;
  print(`held-out loss: base ${h.loss.base!.toFixed(4)} → adapted ${h.loss.adapted!.toFixed(4)}; final ${h.loss.final!.toFixed(4)}${h.loss.baselineQuantized !== undefined ? ` (base quantized the same way: ${h.loss.baselineQuantized.toFixed(4)})` : ''}`);
  print(`final: ${report.files.final} ${gib(report.final.fileBytes)}, ${report.final.bitsPerWeight.toFixed(2)} bpw, KLD vs merged ${report.kld.mean.toFixed(6)}; serving at ctx ${opts.ctx}: ${gib(report.final.servingBytes)} of ${gib(report.final.budget)}`);
  print(`report: ${path.join(runDir, 'report.md')} (stages run: ${pipeline.book.ran.join(', ') || 'none'}; reused: ${pipeline.book.reused.join(', ') || 'none'})`);
  if (a.serve) await (await import('./serve.js')).serveFinal(pipeline.final, { alias: path.basename(path.resolve(runDir)), port: a.port, ctx: opts.ctx, threads: opts.threads, print, log });
  return { plan, runDir, pipeline, report };
}
