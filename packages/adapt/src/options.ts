// `qtk adapt` options: every flag validated here (name, value, allowed range in the error), then merged
// over a config file (`--config adapt.json` or a run's report.json), flags winning.
import { promises as fs } from 'node:fs';
import { QtkError, enumArg, fileError, intArg, numberArg, sizeArg } from '@qtk/core';

export const METHODS = ['rtn', 'imatrix', 'gptq'] as const;
export type Method = (typeof METHODS)[number];

/** Final-file presets adapt may pick or be given (the ones `qtk plan` compares). */
export const FINAL_PRESETS = ['Q8_0', 'Q6_K', 'Q5_K_M', 'Q5_K_S', 'Q4_K_M', 'Q4_K_S', 'IQ4_XS', 'Q3_K_L', 'Q3_K_M', 'Q3_K_S', 'Q2_K', 'Q4_0', 'Q5_0'] as const;

/** Training bases, most precise first: LoRA on the float file (F16 after conversion), else QLoRA on a quantized copy. */
export const TRAIN_BASES = ['float', 'Q8_0', 'Q6_K', 'Q4_K_M', 'IQ4_XS'] as const;
export type TrainBase = (typeof TRAIN_BASES)[number];

export interface AdaptOptions {
  vram: number;
  ctx: number;
  headroom: number;
  /** 'auto': the most precise base that fits the budget. */
  trainBase: TrainBase | 'auto';
  rank: number;
  alpha: number;
  seqLen: number;
  steps?: number;
  epochs: number;
  lr: number;
  batch: number;
  gradAccum: number;
  warmup: number;
  evalEvery: number;
  saveEvery: number;
  evalRows?: number;
  seed: number;
  evalFraction: number;
  include?: string[];
  exclude?: string[];
  method: Method;
  /** A preset, or undefined with `fit`. */
  type?: string;
  /** 'auto' (the budget) or bytes; undefined with `type` or for the recommended preset. */
  fit?: 'auto' | number;
  calibTokens: number;
  evalCtx: number;
  evalChunks: number;
  /** Also quantize the base model the same way (tensor by tensor) and compare. */
  baseline: boolean;
  threads?: number;
}

export const ADAPT_DEFAULTS = {
  ctx: 32768, headroom: 2 ** 30, rank: 16, seqLen: 2048, epochs: 1, lr: 2e-4, batch: 1, gradAccum: 8, warmup: 0.03,
  evalEvery: 50, saveEvery: 50, seed: 0, evalFraction: 0.05, method: 'imatrix', calibTokens: 32768, evalChunks: 64,
} as const;

/** Raw flag values (strings from the command line, or values from a config file). */
export type AdaptFlags = Record<string, unknown>;

const FLAG_KEYS = [
  'vram', 'ctx', 'headroom', 'trainBase', 'rank', 'alpha', 'seqLen', 'steps', 'epochs', 'lr', 'batch', 'gradAccum', 'warmup', 'evalEvery',
  'saveEvery', 'evalRows', 'seed', 'evalFraction', 'include', 'exclude', 'method', 'type', 'fit', 'calibTokens', 'evalCtx', 'evalChunks',
  'baseline', 'threads',
] as const;

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());

export function parseAdaptOptions(f: AdaptFlags): AdaptOptions {
  const vram = sizeArg('--vram', f.vram, { min: 1 << 20 });
  if (vram === undefined) throw new QtkError('--vram is missing. Pass the GPU memory to fit, e.g. --vram 24GiB (on a CPU: the RAM to use)');
  const rank = intArg('--rank', f.rank, { min: 1, max: 4096 }) ?? ADAPT_DEFAULTS.rank;
  const seqLen = intArg('--seq-len', f.seqLen, { min: 16, max: 1 << 20 }) ?? ADAPT_DEFAULTS.seqLen;
  const type = f.type === undefined ? undefined : enumArg('--type', f.type, FINAL_PRESETS);
  let fit: AdaptOptions['fit'];
  if (f.fit !== undefined) fit = String(f.fit).toLowerCase() === 'auto' ? 'auto' : sizeArg('--fit', f.fit, { min: 1 << 20 });
  if (type !== undefined && fit !== undefined) throw new QtkError(`--type ${type} and --fit ${String(f.fit)} both choose the final types. Pass one of them`);
  const method = enumArg('--method', f.method, METHODS) ?? ADAPT_DEFAULTS.method;
  if (method === 'gptq' && fit !== undefined) throw new QtkError('--method gptq rounds inside a preset\'s types; --fit chooses types itself (with an imatrix). Pass --type PRESET with gptq, or --method imatrix with --fit');
  if (f.steps !== undefined && f.epochs !== undefined) throw new QtkError('--steps and --epochs both set the training length. Pass one of them');
  const strings = (v: unknown) => (v === undefined ? undefined : (Array.isArray(v) ? v : [v]).map(String));
  return {
    vram,
    ctx: intArg('--ctx', f.ctx, { min: 1, max: 16_777_216 }) ?? ADAPT_DEFAULTS.ctx,
    headroom: sizeArg('--headroom', f.headroom, { min: 0 }) ?? ADAPT_DEFAULTS.headroom,
    trainBase: f.trainBase === undefined ? 'auto' : enumArg('--train-base', f.trainBase, ['auto', ...TRAIN_BASES] as const)!,
    rank,
    alpha: numberArg('--alpha', f.alpha, { min: 0, exclusiveMin: true }) ?? 2 * rank,
    seqLen,
    steps: intArg('--steps', f.steps, { min: 1, max: 1e9 }),
    epochs: numberArg('--epochs', f.epochs, { min: 0, exclusiveMin: true, max: 1000 }) ?? ADAPT_DEFAULTS.epochs,
    lr: numberArg('--lr', f.lr, { min: 0, exclusiveMin: true, max: 1 }) ?? ADAPT_DEFAULTS.lr,
    batch: intArg('--batch', f.batch, { min: 1, max: 4096 }) ?? ADAPT_DEFAULTS.batch,
    gradAccum: intArg('--grad-accum', f.gradAccum, { min: 1, max: 65536 }) ?? ADAPT_DEFAULTS.gradAccum,
    warmup: numberArg('--warmup', f.warmup, { min: 0, max: 1 }) ?? ADAPT_DEFAULTS.warmup,
    evalEvery: intArg('--eval-every', f.evalEvery, { min: 0, max: 1e9 }) ?? ADAPT_DEFAULTS.evalEvery,
    saveEvery: intArg('--save-every', f.saveEvery, { min: 0, max: 1e9 }) ?? ADAPT_DEFAULTS.saveEvery,
    evalRows: intArg('--eval-rows', f.evalRows, { min: 1, max: 1e9 }),
    seed: intArg('--seed', f.seed, { min: 0, max: 2 ** 32 - 1 }) ?? ADAPT_DEFAULTS.seed,
    evalFraction: numberArg('--eval-fraction', f.evalFraction, { min: 0, exclusiveMin: true, max: 0.5 }) ?? ADAPT_DEFAULTS.evalFraction,
    include: strings(f.include),
    exclude: strings(f.exclude),
    method,
    type,
    fit,
    calibTokens: intArg('--calib-tokens', f.calibTokens, { min: 16, max: 1e9 }) ?? ADAPT_DEFAULTS.calibTokens,
    evalCtx: intArg('--eval-ctx', f.evalCtx, { min: 8, max: seqLen }) ?? Math.min(512, seqLen),
    evalChunks: intArg('--eval-chunks', f.evalChunks, { min: 1, max: 1e9 }) ?? ADAPT_DEFAULTS.evalChunks,
    baseline: Boolean(f.baseline),
    threads: intArg('--threads', f.threads, { min: 1, max: 1024 }),
  };
}

/** The options as flags again (what report.json stores, so `--config report.json` reruns the same run). */
export function optionsAsFlags(o: AdaptOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of FLAG_KEYS) if (o[k] !== undefined) out[k] = o[k];
  // --steps replaces --epochs; both in one config would be refused
  if (o.steps !== undefined) delete out.epochs;
  return out;
}

/** A config file: `{ "model", "repo", "options": {flag: value} }` (report.json has this shape) or plain flags. */
export interface AdaptConfigFile {
  model?: string;
  repo?: string;
  flags: AdaptFlags;
}

export async function readAdaptConfig(file: string): Promise<AdaptConfigFile> {
  let v: unknown;
  try {
    v = JSON.parse(await fs.readFile(file, 'utf8'));
  } catch (e) {
    throw fileError(file, `cannot be read as JSON (${(e as Error).message})`, 'Pass --config a report.json that qtk adapt wrote, or a JSON object of flags');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw fileError(file, 'is not a JSON object', 'Pass --config a report.json that qtk adapt wrote');
  const o = v as Record<string, unknown>;
  const flags = (typeof o.options === 'object' && o.options !== null ? o.options : o) as AdaptFlags;
  const known = new Set<string>(FLAG_KEYS);
  for (const k of Object.keys(flags)) {
    if (!known.has(k) && !['model', 'repo', 'options', 'format'].includes(k) && flags === o) continue;
    if (flags !== o && !known.has(k)) throw fileError(file, `has an unknown option "${k}"`, `Use the flags of qtk adapt: ${FLAG_KEYS.map(kebab).join(', ')}`);
  }
  const picked: AdaptFlags = {};
  for (const k of FLAG_KEYS) if (flags[k] !== undefined && flags[k] !== null) picked[k] = flags[k];
  return { model: typeof o.model === 'string' ? o.model : undefined, repo: typeof o.repo === 'string' ? o.repo : undefined, flags: picked };
}
