// The training loop: per optimizer step, `gradAccum` micro-batches of `batch` rows each; gradients of
// the summed loss are added up and divided by the step's loss-token count (a token-weighted mean over
// the whole step), clipped by global norm, then AdamW with the scheduled learning rate. Eval before
// step 0, every `evalEvery` steps and at the end; checkpoints every `saveEvery` steps, at the end and
// when a stop is requested (SIGINT/SIGTERM). Everything random is keyed by (seed, step), so a run
// resumed from a checkpoint computes what the uninterrupted run would have, step for step.
import { AdamW, clipGlobalNorm } from './optimizer.js';
import { CHECKPOINT_SLOTS, loadLatestCheckpoint, writeCheckpoint, type CheckpointTensor } from './checkpoint.js';
import { DataOrder } from './data.js';
import type { LoraParam, TrainBatch, TrainableModel } from './model.js';
import { mixSeed } from './rng.js';
import { learningRate, warmupSteps, type ScheduleKind } from './schedule.js';
import { QtkError } from '@qtk/core';
import type { TrainOptions } from './options.js';

/** The loop's share of the command's options; the run length is always steps (the caller turns epochs into steps). */
export type TrainLoopConfig = Pick<TrainOptions, 'batch' | 'gradAccum' | 'lr' | 'warmup' | 'schedule' | 'weightDecay' | 'maxGradNorm' | 'evalEvery' | 'saveEvery' | 'seed'> & {
  steps: number;
  /** Checkpoints kept on disk (the newest ones). */
  keepCheckpoints: number;
};

export interface StepRecord {
  step: number;
  epoch: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Loss tokens of this step, and all tokens (input) read so far. */
  lossTokens: number;
  tokensSeen: number;
  /** Wall time of this step and tokens (input) per second over it. */
  seconds: number;
  tokensPerSecond: number;
}

export interface EvalRecord {
  step: number;
  loss: number;
  perplexity: number;
  tokens: number;
}

export interface TrainHistory {
  steps: StepRecord[];
  evals: EvalRecord[];
}

/** What a checkpoint's state.json carries besides the tensors. */
export interface CheckpointJson {
  config: TrainLoopConfig;
  optimizerStep: number;
  data: { nRows: number; rowsPerStep: number; epoch: number; index: number };
  rng: { seed: number; scheme: 'mix32(seed, step, micro)' };
  history: TrainHistory;
  /** Whatever the caller records (model, dataset fingerprint): compared on resume. */
  identity: unknown;
}

export interface TrainLoopHooks {
  onStep?(r: StepRecord): void;
  onEval?(r: EvalRecord, history: TrainHistory): void | Promise<void>;
  onCheckpoint?(dir: string, step: number): void | Promise<void>;
  /** Polled between steps: true ends the run after a checkpoint. */
  shouldStop?(): boolean;
}

export interface TrainLoopResult {
  history: TrainHistory;
  /** The final (or interrupted) parameters, in model.params() order. */
  params: LoraParam[];
  stepsDone: number;
  interrupted: boolean;
  /** Step the run resumed from (0 for a fresh run). */
  resumedFrom: number;
}

export async function evaluate(model: TrainableModel, rows: readonly TrainBatch[], step: number): Promise<EvalRecord> {
  let sum = 0, n = 0;
  for (const r of rows) {
    const e = await model.evalLoss(r);
    sum += e.lossSum;
    n += e.nTokens;
  }
  const loss = n > 0 ? sum / n : Number.NaN;
  return { step, loss, perplexity: Math.exp(loss), tokens: n };
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export async function trainLoop(opts: {
  model: TrainableModel;
  train: readonly TrainBatch[];
  eval: readonly TrainBatch[];
  config: TrainLoopConfig;
  runDir: string;
  resume?: boolean;
  identity?: unknown;
  hooks?: TrainLoopHooks;
}): Promise<TrainLoopResult> {
  const { model, train, config: c, runDir, hooks = {} } = opts;
  const params = model.params().map((p) => ({ ...p, a: Float32Array.from(p.a), b: Float32Array.from(p.b) }));
  const flat = params.flatMap((p) => [p.a, p.b]);
  const opt = new AdamW(flat, { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: c.weightDecay });
  const order = new DataOrder(train.length, c.batch * c.gradAccum, c.seed);
  const schedule = { kind: c.schedule, peak: c.lr, warmupSteps: warmupSteps(c.warmup, c.steps), totalSteps: c.steps };
  let history: TrainHistory = { steps: [], evals: [] };
  let step = 0;

  if (opts.resume) {
    const ck = await loadLatestCheckpoint<CheckpointJson>(runDir);
    if (!sameJson(ck.json.identity, opts.identity ?? null)) {
      throw new QtkError(`${ck.dir}: the checkpoint was made with ${JSON.stringify(ck.json.identity)}, this run has ${JSON.stringify(opts.identity ?? null)}. Resume with the same model and dataset, or start a new run with another -o.`, { file: ck.dir });
    }
    if (!sameJson(ck.json.config, c)) {
      throw new QtkError(`${ck.dir}: the checkpoint's training settings ${JSON.stringify(ck.json.config)} differ from this run's ${JSON.stringify(c)}. Resume with the settings of the run (train.json), or start a new run.`, { file: ck.dir });
    }
    for (const p of params) {
      const t = ck.tensors.get(p.module);
      if (!t || t.length !== CHECKPOINT_SLOTS.length || t[0]!.length !== p.a.length || t[1]!.length !== p.b.length) {
        throw new QtkError(`${ck.dir}: no saved state of matching shape for ${p.module}. Resume with the run's own --rank and --targets, or start a new run.`, { file: ck.dir });
      }
    }
    params.forEach((p, i) => {
      const t = ck.tensors.get(p.module)!;
      p.a.set(t[0]!);
      p.b.set(t[1]!);
      opt.m[2 * i]!.set(t[2]!);
      opt.m[2 * i + 1]!.set(t[3]!);
      opt.v[2 * i]!.set(t[4]!);
      opt.v[2 * i + 1]!.set(t[5]!);
    });
    opt.step = ck.json.optimizerStep;
    step = ck.step;
    history = ck.json.history;
    model.setParams(params);
  }
  const resumedFrom = step;

  const checkpoint = async () => {
    const tensors: CheckpointTensor[] = params.map((p, i) => ({
      module: p.module, shapeA: p.shapeA, shapeB: p.shapeB,
      arrays: [p.a, p.b, opt.m[2 * i]!, opt.m[2 * i + 1]!, opt.v[2 * i]!, opt.v[2 * i + 1]!],
    }));
    const pos = order.position(step);
    const json: CheckpointJson = {
      config: c, optimizerStep: opt.step,
      data: { nRows: train.length, rowsPerStep: order.rowsPerStep, ...pos },
      rng: { seed: c.seed, scheme: 'mix32(seed, step, micro)' },
      history, identity: opts.identity ?? null,
    };
    const dir = await writeCheckpoint(runDir, step, tensors, json, c.keepCheckpoints);
    await hooks.onCheckpoint?.(dir, step);
  };
  const runEval = async () => {
    const r = await evaluate(model, opts.eval, step);
    history.evals.push(r);
    await hooks.onEval?.(r, history);
  };

  if (step === 0 && opts.eval.length > 0) await runEval();
  let tokensSeen = history.steps.at(-1)?.tokensSeen ?? 0;
  const acc = flat.map((p) => new Float64Array(p.length));
  const grads = flat.map((p) => new Float32Array(p.length));
  while (step < c.steps) {
    if (hooks.shouldStop?.()) {
      await checkpoint();
      return { history, params, stepsDone: step, interrupted: true, resumedFrom };
    }
    const t0 = performance.now();
    for (const a of acc) a.fill(0);
    let lossSum = 0, lossTokens = 0, inputTokens = 0;
    const rows = order.rowsForStep(step);
    for (let j = 0; j < rows.length; j++) {
      const row = train[rows[j]!]!;
      const r = await model.lossAndGradients(row, { dropoutSeed: mixSeed(c.seed, step, j) });
      lossSum += r.lossSum;
      lossTokens += r.nTokens;
      inputTokens += row.tokens.length;
      r.grads.forEach((g, i) => {
        for (const [k, src] of [[2 * i, g.a], [2 * i + 1, g.b]] as const) {
          const dst = acc[k]!;
          for (let x = 0; x < dst.length; x++) dst[x]! += src[x]!;
        }
      });
    }
    const inv = lossTokens > 0 ? 1 / lossTokens : 0;
    acc.forEach((a, k) => { const g = grads[k]!; for (let x = 0; x < a.length; x++) g[x] = a[x]! * inv; });
    const gradNorm = clipGlobalNorm(grads, c.maxGradNorm);
    const lr = learningRate(schedule, step);
    opt.update(grads, lr);
    model.setParams(params);
    const epoch = order.position(step).epoch;
    step++;
    tokensSeen += inputTokens;
    const seconds = (performance.now() - t0) / 1000;
    const rec: StepRecord = { step, epoch, loss: lossTokens > 0 ? lossSum / lossTokens : Number.NaN, lr, gradNorm, lossTokens, tokensSeen, seconds, tokensPerSecond: inputTokens / seconds };
    history.steps.push(rec);
    hooks.onStep?.(rec);
    const last = step === c.steps;
    if (opts.eval.length > 0 && (last || (c.evalEvery > 0 && step % c.evalEvery === 0))) await runEval();
    if (last || (c.saveEvery > 0 && step % c.saveEvery === 0)) await checkpoint();
    // let signal handlers run between steps even when the model computes synchronously
    await new Promise((r) => setImmediate(r));
  }
  return { history, params, stepsDone: step, interrupted: false, resumedFrom };
}
