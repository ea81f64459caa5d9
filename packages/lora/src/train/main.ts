// `qtk lora train <repo | dataset-dir> --model <gguf>`: check the inputs, build or reuse the dataset,
// plan, train with eval and checkpoints, write the adapter (PEFT + GGUF), metrics and the loss plot.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { GgufReader, QtkError, assertOutputNotInput, fileError, hparamsFromGguf, onInterrupt, writeFileAtomic, type LoraTarget } from '@qtk/core';
import { DataOrder, emptyTrainSplit, readTrainRows } from './data.js';
import { openTrainModel } from './engine.js';
import { writeAdapters } from './adapter-out.js';
import { parseTrainOptions, TRAIN_DEFAULTS, type TrainOptions } from './options.js';
import { formatPlan, planRun, type RunPlan } from './plan.js';
import { planMemory } from './plan-memory.js';
import { TrainProgress } from './progress.js';
import { RUN_FILES, writeMetricsAndPlot } from './run-files.js';
import { resolveTrainData, type RepoBuildOptions } from './source.js';
import { resolveTargets } from './targets.js';
import { trainLoop, type TrainHistory, type TrainLoopConfig } from './trainer.js';

export const TRAIN_ARCHS = ['qwen35', 'qwen3'] as const;

export interface LoraTrainArgs {
  input?: string;
  model?: string;
  out?: string;
  resume?: string;
  plan?: boolean;
  json?: boolean;
  /** Options of the dataset build when the input is a repository. */
  build?: RepoBuildOptions;
  /** Raw training flags (validated by parseTrainOptions). */
  flags: Record<string, unknown>;
  /** Where lines go (default process.stdout / stderr). */
  out$?: NodeJS.WritableStream;
  err$?: NodeJS.WriteStream;
}

/** What train.json records. */
export interface TrainJson {
  format: 'qtk-lora-run/1';
  status: 'running' | 'interrupted' | 'finished';
  input: string;
  model: string;
  options: TrainOptions;
  build?: RepoBuildOptions;
  seqLen: number;
  dataset: { dir: string; fingerprint: string; origin: string; trainRows: number; evalRows: number; trainTokens: number };
  identity: RunIdentity;
  targets: { module: string; tensor: string; in: number; out: number }[];
  plan: RunPlan;
  commit: string | null;
  timings: { startedAt: string; finishedAt?: string; trainSeconds?: number; tokensPerSecond?: number };
  result?: { steps: number; evalLossBefore?: number; evalLossAfter?: number; peakRssBytes: number };
}

interface RunIdentity {
  model: { file: string; bytes: number; tokenizer: string | null };
  dataset: string;
}

export interface TrainRunSummary {
  runDir: string;
  status: TrainJson['status'] | 'planned';
  history?: TrainHistory;
  plan: RunPlan;
}

async function gitCommit(dir: string): Promise<string | null> {
  const { execFile } = await import('node:child_process');
  return new Promise((resolve) => execFile('git', ['-C', dir, 'rev-parse', 'HEAD'], (e, out) => resolve(e ? null : out.trim() || null)));
}

interface ModelInfo {
  arch: (typeof TRAIN_ARCHS)[number];
  nCtxTrain: number;
  targets: LoraTarget[];
  bytes: number;
}

async function inspectModel(model: string, opts: TrainOptions, seqLen: number): Promise<ModelInfo> {
  const r = await GgufReader.open(model);
  try {
    const arch = String(r.get('general.architecture'));
    if (!(TRAIN_ARCHS as readonly string[]).includes(arch)) {
      throw fileError(model, `has architecture '${arch}'; LoRA training runs on ${TRAIN_ARCHS.join(', ')}`, 'Pass --model a Qwen3.5/3.6 (qwen35) or Qwen3 GGUF');
    }
    const ctxRaw = r.get(`${arch}.context_length`);
    const nCtxTrain = Number(typeof ctxRaw === 'bigint' ? Number(ctxRaw) : ctxRaw);
    if (Number.isFinite(nCtxTrain) && nCtxTrain > 0 && seqLen > nCtxTrain) {
      throw new QtkError(`--seq-len ${seqLen} is above ${model}'s context of ${nCtxTrain} tokens. Pass --seq-len ${nCtxTrain} or less.`);
    }
    const h = hparamsFromGguf((k) => r.get(k), model);
    const targets = resolveTargets(arch, h, opts.targets, opts.rank, model);
    return { arch: arch as ModelInfo['arch'], nCtxTrain, targets, bytes: r.fileSize };
  } finally {
    await r.close();
  }
}

async function readJson<T>(file: string): Promise<T> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T;
  } catch (e) {
    throw fileError(file, `cannot be read (${(e as Error).message})`, 'Pass --resume the folder of a run that `qtk lora train` started', e);
  }
}

export async function loraTrainMain(args: LoraTrainArgs): Promise<TrainRunSummary> {
  const out = args.out$ ?? process.stdout;
  const err = args.err$ ?? process.stderr;
  const log = (line: string) => { if (!args.json) err.write(`${line}\n`); };
  const startedAt = new Date().toISOString();

  let runDir: string, input: string, model: string, opts: TrainOptions, build: RepoBuildOptions | undefined;
  if (args.resume) {
    runDir = args.resume;
    const saved = await readJson<TrainJson>(path.join(runDir, RUN_FILES.trainJson));
    if (saved.format !== 'qtk-lora-run/1') throw fileError(path.join(runDir, RUN_FILES.trainJson), 'is not a qtk training run record', 'Pass --resume the folder of a run that `qtk lora train` started');
    input = args.input ?? saved.input;
    model = args.model ?? saved.model;
    // the run's settings are the saved ones; only how it computes may change
    const flags = parseTrainOptions(args.flags);
    opts = { ...saved.options, threads: flags.threads ?? saved.options.threads, device: args.flags.device !== undefined ? flags.device : saved.options.device };
    build = saved.build;
  } else {
    if (!args.input) throw new QtkError('no input: pass a repository folder or a dataset folder, e.g. `qtk lora train ./repo --model model.gguf`.');
    if (!args.model) throw new QtkError('--model is missing. Pass --model the base model GGUF, e.g. --model model-Q4_K_M.gguf.');
    input = args.input;
    model = args.model;
    opts = parseTrainOptions(args.flags);
    build = args.build;
    runDir = args.out ?? path.join('runs', path.basename(path.resolve(input)));
    if (await fs.stat(path.join(runDir, RUN_FILES.trainJson)).catch(() => undefined)) {
      throw new QtkError(`${runDir}: already holds a training run (${RUN_FILES.trainJson}). Continue it with --resume ${runDir}, or pass -o another folder.`, { file: runDir });
    }
    await assertOutputNotInput(runDir, [input, model], { flag: '-o' });
  }
  if (!(await fs.stat(model).catch(() => undefined))) throw fileError(model, 'does not exist', 'Pass --model the base model GGUF');

  const seqLenWanted = opts.seqLen ?? TRAIN_DEFAULTS.seqLen;
  const info = await inspectModel(model, opts, seqLenWanted);
  const data = await resolveTrainData(input, { model, seqLen: seqLenWanted, build, log });
  const seqLen = opts.seqLen ?? data.seqLen;
  if (seqLen > info.nCtxTrain) throw new QtkError(`the dataset's rows are ${seqLen} tokens, above ${model}'s context of ${info.nCtxTrain}. Pass --seq-len ${info.nCtxTrain} or less.`);
  const train = await readTrainRows(data.train.arrowFile, seqLen);
  if (train.rows.length === 0) throw emptyTrainSplit(data.train.arrowFile);
  let evalRows = data.eval ? (await readTrainRows(data.eval.arrowFile, seqLen)).rows : [];
  if (opts.evalRows !== undefined) evalRows = evalRows.slice(0, opts.evalRows);
  if (evalRows.length === 0) log(`note: ${data.dir} has no eval rows, so no eval loss is measured; rebuild it with a larger --eval-fraction to see one`);

  const order = new DataOrder(train.rows.length, opts.batch * opts.gradAccum, opts.seed);
  const steps = opts.steps ?? order.stepsFor(opts.epochs);
  const loraParams = info.targets.reduce((a, t) => a + opts.rank * (t.inFeatures + t.outFeatures), 0);
  const longest = [...train.rows, ...evalRows].reduce((a, r) => Math.max(a, r.tokens.length), 0);
  const memory = await planMemory(model, { loraParams, tokens: longest });
  const plan = planRun({ modelFile: model, arch: info.arch, targets: info.targets, rank: opts.rank, seqLen, batch: opts.batch, steps, order, rows: train.rows, evalRows, evalEvery: opts.evalEvery, memory });
  if (args.plan) {
    out.write((args.json ? JSON.stringify({ type: 'plan', ...plan }) : formatPlan(plan)) + '\n');
    return { runDir, status: 'planned', plan };
  }
  if (!args.json) err.write(formatPlan(plan) + '\n');

  const identity: RunIdentity = { model: { file: path.basename(model), bytes: info.bytes, tokenizer: null }, dataset: data.fingerprint };
  const loop: TrainLoopConfig = {
    batch: opts.batch, gradAccum: opts.gradAccum, lr: opts.lr, warmup: opts.warmup, schedule: opts.schedule, weightDecay: opts.weightDecay,
    maxGradNorm: opts.maxGradNorm, steps, evalEvery: opts.evalEvery, saveEvery: opts.saveEvery, seed: opts.seed, keepCheckpoints: TRAIN_DEFAULTS.keepCheckpoints,
  };
  await fs.mkdir(runDir, { recursive: true });
  const record: TrainJson = {
    format: 'qtk-lora-run/1', status: 'running', input, model, options: opts, build, seqLen,
    dataset: { dir: data.dir, fingerprint: data.fingerprint, origin: data.origin, trainRows: train.rows.length, evalRows: evalRows.length, trainTokens: train.tokens },
    identity, targets: info.targets.map((t) => ({ module: t.module, tensor: t.tensor, in: t.inFeatures, out: t.outFeatures })),
    plan, commit: await gitCommit(path.resolve(input)), timings: { startedAt },
  };
  const saveRecord = () => writeFileAtomic(path.join(runDir, RUN_FILES.trainJson), JSON.stringify(record, null, 2) + '\n');
  if (!args.resume) await saveRecord();

  const spec = opts.targets.flatMap((t) => t.split(',')).map((t) => t.trim()).filter(Boolean);
  const trainModel = await openTrainModel(model, { targets: spec.includes('all') || spec.length === 0 ? undefined : spec, rank: opts.rank, alpha: opts.alpha, rslora: opts.rslora, dropout: opts.dropout, seed: opts.seed, seqLen, threads: opts.threads, device: opts.device });
  const title = `${path.basename(model)} + LoRA r${opts.rank} on ${path.basename(path.resolve(input))}`;
  const progress = new TrainProgress({ totalSteps: steps, json: Boolean(args.json), out, err, plan });
  let stopRequested = false;
  let stopped: (note: string) => void = () => {};
  const stoppedNote = new Promise<string>((r) => { stopped = r; });
  const off = onInterrupt(async () => { stopRequested = true; return stoppedNote; }, 'lora train');
  const t0 = performance.now();
  try {
    const res = await trainLoop({
      model: trainModel, train: train.rows, eval: evalRows, config: loop, runDir, resume: Boolean(args.resume), identity,
      hooks: {
        shouldStop: () => stopRequested,
        onStep: (r) => progress.step(r),
        onEval: async (r, h) => { progress.eval(r); await writeMetricsAndPlot(runDir, h, title); },
        onCheckpoint: async (dir, step) => { progress.note(`checkpoint of step ${step}: ${dir}`); },
      },
    });
    const seconds = (performance.now() - t0) / 1000;
    await writeMetricsAndPlot(runDir, res.history, title);
    const peakRssBytes = process.resourceUsage().maxRSS * 1024;
    const evals = res.history.evals;
    record.result = { steps: res.stepsDone, evalLossBefore: evals[0]?.loss, evalLossAfter: evals.at(-1)?.loss, peakRssBytes };
    const stepTokens = res.history.steps.filter((s) => s.step > res.resumedFrom);
    record.timings = { ...record.timings, finishedAt: new Date().toISOString(), trainSeconds: seconds, tokensPerSecond: stepTokens.reduce((a, s) => a + s.tokensPerSecond * s.seconds, 0) / seconds };
    if (res.interrupted) {
      record.status = 'interrupted';
      await saveRecord();
      progress.done();
      stopped(`checkpoint of step ${res.stepsDone} saved in ${runDir}; continue with \`qtk lora train --resume ${runDir}\``);
      // the interrupt policy prints the line and exits
      await new Promise(() => {});
    }
    await writeAdapters(runDir, res.params, { arch: info.arch, model, rank: opts.rank, alpha: opts.alpha, rslora: opts.rslora, dropout: opts.dropout });
    record.status = 'finished';
    await saveRecord();
    progress.done();
    progress.summary({ runDir, history: res.history, peakRssBytes, seconds });
    return { runDir, status: 'finished', history: res.history, plan };
  } finally {
    off();
    trainModel.free();
  }
}
