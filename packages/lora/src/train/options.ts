// `qtk lora train` settings: defaults, validation of every flag (name, value, allowed range) and the
// part of them a resumed run must share with the run it continues.
import { QtkError, enumArg, intArg, numberArg } from '@qtk/core';
import { SCHEDULES, type ScheduleKind } from './schedule.js';

export const DEVICES = ['auto', 'cpu', 'cuda', 'vulkan'] as const;
export type TrainDevice = (typeof DEVICES)[number];

export const TRAIN_DEFAULTS = {
  rank: 16, alpha: 32, rslora: false, dropout: 0, targets: ['all'], seqLen: 2048, batch: 1, gradAccum: 8, lr: 2e-4,
  warmup: 0.03, schedule: 'cosine' as ScheduleKind, weightDecay: 0, maxGradNorm: 1, epochs: 1, evalEvery: 50, saveEvery: 100, seed: 0,
  device: 'auto' as TrainDevice, keepCheckpoints: 2,
} as const;

export interface TrainOptions {
  rank: number;
  alpha: number;
  rslora: boolean;
  dropout: number;
  targets: string[];
  /** Undefined: the dataset's own row length (a repository is built at the default). */
  seqLen?: number;
  batch: number;
  gradAccum: number;
  lr: number;
  warmup: number;
  schedule: ScheduleKind;
  weightDecay: number;
  maxGradNorm: number;
  epochs: number;
  steps?: number;
  evalEvery: number;
  saveEvery: number;
  seed: number;
  threads?: number;
  device: TrainDevice;
  /** Eval rows used at each eval (default: all). */
  evalRows?: number;
}

/** Validates raw flag values (strings, numbers or undefined) into TrainOptions. */
export function parseTrainOptions(raw: Record<string, unknown>): TrainOptions {
  const D = TRAIN_DEFAULTS;
  if (raw.epochs !== undefined && raw.steps !== undefined) throw new QtkError('--epochs and --steps both given; the run length is one or the other. Pass only --steps N, or only --epochs N.');
  const targets = raw.targets === undefined ? [...D.targets] : (Array.isArray(raw.targets) ? raw.targets : [raw.targets]).map(String);
  return {
    rank: intArg('rank', raw.rank, { min: 1, max: 4096 }) ?? D.rank,
    alpha: numberArg('alpha', raw.alpha, { min: 0, exclusiveMin: true, max: 1e6 }) ?? D.alpha,
    rslora: raw.rslora === undefined ? D.rslora : Boolean(raw.rslora),
    dropout: numberArg('dropout', raw.dropout, { min: 0, max: 0.9 }) ?? D.dropout,
    targets,
    seqLen: intArg('seq-len', raw.seqLen, { min: 16, max: 1 << 20 }),
    batch: intArg('batch', raw.batch, { min: 1, max: 4096 }) ?? D.batch,
    gradAccum: intArg('grad-accum', raw.gradAccum, { min: 1, max: 65536 }) ?? D.gradAccum,
    lr: numberArg('lr', raw.lr, { min: 0, exclusiveMin: true, max: 1 }) ?? D.lr,
    warmup: numberArg('warmup', raw.warmup, { min: 0, max: 1 }) ?? D.warmup,
    schedule: enumArg('schedule', raw.schedule, SCHEDULES) ?? D.schedule,
    weightDecay: numberArg('weight-decay', raw.weightDecay, { min: 0, max: 10 }) ?? D.weightDecay,
    maxGradNorm: numberArg('max-grad-norm', raw.maxGradNorm, { min: 0 }) ?? D.maxGradNorm,
    epochs: numberArg('epochs', raw.epochs, { min: 0, exclusiveMin: true, max: 1e6 }) ?? D.epochs,
    steps: intArg('steps', raw.steps, { min: 1, max: 1e9 }),
    evalEvery: intArg('eval-every', raw.evalEvery, { min: 0, max: 1e9 }) ?? D.evalEvery,
    saveEvery: intArg('save-every', raw.saveEvery, { min: 0, max: 1e9 }) ?? D.saveEvery,
    seed: intArg('seed', raw.seed, { min: 0, max: 2 ** 32 - 1 }) ?? D.seed,
    threads: intArg('threads', raw.threads, { min: 1, max: 1024 }),
    device: enumArg('device', raw.device, DEVICES) ?? D.device,
    evalRows: intArg('eval-rows', raw.evalRows, { min: 1, max: 1e9 }),
  };
}
