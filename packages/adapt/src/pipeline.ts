// The stages of `qtk adapt`, each a library call of the package that owns the step, each cached in the run
// folder under the hash of its inputs and options (stages.ts). Keys chain: a stage's key includes the keys
// of the stages it reads, so changing one option reruns that stage and those downstream of it only.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { GgufReader } from '@qtk/core';
import { convertCheckpoint } from '@qtk/convert';
import { evalKldMain, imatrixMain, perplexityOf } from '@qtk/engine';
import { buildDataset, loraTrainMain, mergeLora, RUN_FILES, type TrainJson } from '@qtk/lora';
import { fitGguf, quantizeGguf, quantizeGptq, type PresetName } from '@qtk/quantize';
import type { BaseModel } from './describe.js';
import { folderFingerprint, fileFingerprint, repoFingerprint, stageKey } from './fingerprint.js';
import type { AdaptOptions } from './options.js';
import type { AdaptPlan } from './plan.js';
import { StageBook } from './stages.js';

export interface PipelineInput {
  base: BaseModel;
  repo: string;
  runDir: string;
  opts: AdaptOptions;
  plan: AdaptPlan;
  log: (line: string) => void;
  /** Streams the training loop writes to (its plan, progress and summary). */
  trainErr?: NodeJS.WriteStream;
}

export interface TrainStageResult { steps: number; evalLossBefore?: number; evalLossAfter?: number; peakRssBytes: number; trainBase: string }
export interface QuantizeStageResult { preset: PresetName; fileBytes: number; bitsPerWeight: number; mix: Record<string, number>; fit?: { budget: number; contextBytes: number } }
export interface EvalStageResult {
  evalTokens: number;
  ppl: { base: number; merged: number; final: number; baseline?: number };
  kld: { mean: number; p99: number; max: number; tokens: number };
}

export interface PipelineResult {
  f16: string;
  datasetDir: string;
  trainDir: string;
  merged: string;
  final: string;
  baseline?: string;
  train: TrainStageResult;
  quantize: QuantizeStageResult;
  eval: EvalStageResult;
  book: StageBook;
}

/** Tensor types of a GGUF, as counts and as the per-tensor list (for the baseline). */
async function tensorTypes(file: string): Promise<{ types: { name: string; type: string }[]; mix: Record<string, number>; elements: number; dataBytes: number }> {
  const r = await GgufReader.open(file);
  try {
    const mix: Record<string, number> = {};
    let elements = 0, dataBytes = 0;
    for (const t of r.tensors) {
      mix[t.type] = (mix[t.type] ?? 0) + 1;
      elements += t.ne.reduce((a, b) => a * b, 1);
      dataBytes += t.byteLength;
    }
    return { types: r.tensors.map((t) => ({ name: t.name, type: t.type })), mix, elements, dataBytes };
  } finally {
    await r.close();
  }
}

const quiet = { write: () => true } as unknown as NodeJS.WriteStream;

export async function runPipeline(p: PipelineInput): Promise<PipelineResult> {
  const { base, opts: o, runDir, log } = p;
  const book = await StageBook.open(runDir, log);
  const threads = o.threads;

  // convert: the Hugging Face checkpoint to an F16 GGUF (a GGUF input is used as it is)
  let f16: string, convertKey: string;
  if (base.kind === 'gguf') {
    f16 = path.resolve(base.input);
    convertKey = stageKey({ gguf: await fileFingerprint(f16) });
  } else {
    convertKey = stageKey({ stage: 'convert', hf: await folderFingerprint(base.input), outtype: 'f16' });
    f16 = path.join(runDir, 'convert', 'model-F16.gguf');
    await book.run('convert', convertKey, async () => {
      await convertCheckpoint({ input: base.input, output: f16, outtype: 'f16', force: true, log });
      return { outputs: [f16] };
    });
  }

  // dataset: the repository, tokenized by the model's tokenizer, packed into rows; a share of files held out
  const datasetKey = stageKey({
    stage: 'dataset', repo: await repoFingerprint(p.repo, runDir), tokenizer: convertKey, seqLen: o.seqLen, evalFraction: o.evalFraction, seed: o.seed,
    include: o.include ?? null, exclude: o.exclude ?? null,
  });
  const datasetDir = path.join(runDir, 'dataset', 'data');
  await book.run('dataset', datasetKey, async (dir) => {
    await buildDataset({
      repo: p.repo, tokenizer: f16, outDir: dir, name: 'data', seqLen: o.seqLen, evalFraction: o.evalFraction, seed: o.seed,
      include: o.include, exclude: o.exclude, force: true,
    });
    return { outputs: [path.join(datasetDir, 'train.arrow'), path.join(datasetDir, 'eval.arrow')] };
  });

  // train-base: QLoRA trains on a quantized copy when LoRA on F16 does not fit
  const trainBase = p.plan.train.base;
  let trainModel = f16, trainBaseKey = convertKey;
  if (trainBase !== 'float') {
    trainBaseKey = stageKey({ stage: 'train-base', convertKey, preset: trainBase });
    trainModel = path.join(runDir, 'train-base', `model-${trainBase}.gguf`);
    await book.run('train-base', trainBaseKey, async () => {
      await quantizeGguf({ input: f16, output: trainModel, preset: trainBase, threads, force: true, log });
      return { outputs: [trainModel] };
    });
  }

  // train: LoRA with eval and checkpoints; an unfinished run of the same key continues from its last checkpoint
  const trainFlags = {
    rank: o.rank, alpha: o.alpha, seqLen: o.seqLen, steps: o.steps, epochs: o.steps === undefined ? o.epochs : undefined, lr: o.lr, batch: o.batch,
    gradAccum: o.gradAccum, warmup: o.warmup, evalEvery: o.evalEvery, saveEvery: o.saveEvery, evalRows: o.evalRows, seed: o.seed,
  };
  const trainKey = stageKey({ stage: 'train', datasetKey, trainBaseKey, ...trainFlags });
  // the trainer's own run folder, one level down: it refuses an existing folder unless resuming
  const trainDir = path.join(runDir, 'train', 'run');
  const train = await book.run<TrainStageResult>('train', trainKey, async () => {
    const dir = trainDir;
    const started = await fs.stat(path.join(dir, RUN_FILES.trainJson)).catch(() => undefined);
    const flags = Object.fromEntries(Object.entries({ ...trainFlags, threads }).filter(([, v]) => v !== undefined));
    const common = { out$: quiet, err$: p.trainErr ?? process.stderr };
    if (started) log(`stage train: continuing the run in ${dir} from its last checkpoint`);
    await (started
      ? loraTrainMain({ ...common, resume: dir, flags: { threads } })
      : loraTrainMain({ ...common, input: datasetDir, model: trainModel, out: dir, flags }));
    const tj = JSON.parse(await fs.readFile(path.join(dir, RUN_FILES.trainJson), 'utf8')) as TrainJson;
    const r = tj.result!;
    return {
      outputs: [path.join(dir, RUN_FILES.gguf), path.join(dir, RUN_FILES.plotPng)],
      result: { steps: r.steps, evalLossBefore: r.evalLossBefore, evalLossAfter: r.evalLossAfter, peakRssBytes: r.peakRssBytes, trainBase },
    };
  });

  // merge: W + scale·B·A into the float base, in its type (a QLoRA adapter too: it merges into the unquantized weights)
  const mergeKey = stageKey({ stage: 'merge', convertKey, trainKey });
  const merged = path.join(runDir, 'merge', 'merged.gguf');
  await book.run('merge', mergeKey, async () => {
    await mergeLora({ base: f16, adapters: [{ path: path.join(trainDir, RUN_FILES.gguf) }], output: merged, overwrite: true, log });
    return { outputs: [merged] };
  });

  // calibrate: an importance matrix of the merged model on the training split (imatrix method only)
  const calibCtx = Math.min(512, o.seqLen);
  let imatrix: string | undefined, calibKey = 'none';
  if (o.method === 'imatrix') {
    calibKey = stageKey({ stage: 'calibrate', mergeKey, datasetKey, tokens: o.calibTokens, ctx: calibCtx });
    imatrix = path.join(runDir, 'calibrate', 'imatrix.gguf');
    await book.run('calibrate', calibKey, async () => {
      await imatrixMain({ model: merged, output: imatrix!, data: datasetDir, split: 'train', ctx: calibCtx, chunks: Math.max(1, Math.ceil(o.calibTokens / calibCtx)), threads, force: true, out: log });
      return { outputs: [imatrix!] };
    });
  }

  // quantize: a preset (with imatrix or GPTQ rounding) or each tensor's type fitted to the budget
  const final = path.join(runDir, 'quantize', 'model.gguf');
  const fitBudget = p.plan.final.kind === 'fit' ? p.plan.final.fitBudget : undefined;
  const quantizeKey = stageKey({ stage: 'quantize', mergeKey, calibKey, method: o.method, preset: p.plan.final.preset ?? null, fitBudget: fitBudget ?? null, ctx: fitBudget ? o.ctx : null, calibTokens: o.method === 'gptq' ? o.calibTokens : null });
  const quant = await book.run<QuantizeStageResult>('quantize', quantizeKey, async () => {
    let preset: PresetName, fit: QuantizeStageResult['fit'];
    if (fitBudget !== undefined) {
      const r = await fitGguf({ input: merged, output: final, budget: fitBudget, ctx: o.ctx, imatrix, threads, force: true, log });
      preset = r.quantize.preset;
      fit = { budget: r.budget, contextBytes: r.contextBytes };
    } else if (o.method === 'gptq') {
      preset = (await quantizeGptq({ input: merged, output: final, preset: p.plan.final.preset!, calib: datasetDir, tokens: o.calibTokens, threads, force: true, log })).preset;
    } else {
      preset = (await quantizeGguf({ input: merged, output: final, preset: p.plan.final.preset!, imatrix, threads, force: true, log })).preset;
    }
    const t = await tensorTypes(final);
    const fileBytes = (await fs.stat(final)).size;
    return { outputs: [final], result: { preset, fileBytes, bitsPerWeight: (t.dataBytes * 8) / t.elements, mix: t.mix, fit } };
  });

  // baseline: the base model with exactly the final file's tensor types, so the eval compares like with like
  let baseline: string | undefined, baselineKey = 'none';
  if (o.baseline) {
    baselineKey = stageKey({ stage: 'baseline', convertKey, quantizeKey });
    baseline = path.join(runDir, 'baseline', 'model.gguf');
    await book.run('baseline', baselineKey, async () => {
      const { types } = await tensorTypes(final);
      const tensorTypesSpec = types.filter((t) => t.type !== 'F32').map((t) => `^${t.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$=${t.type}`);
      await quantizeGguf({ input: f16, output: baseline!, preset: quant.result.preset, tensorTypes: tensorTypesSpec, threads, force: true, log });
      return { outputs: [baseline!] };
    });
  }

  // eval: perplexity on the held-out split before and after training, and KLD of the final file vs the merged model
  const evalKey = stageKey({ stage: 'eval', convertKey, datasetKey, mergeKey, quantizeKey, baselineKey, ctx: o.evalCtx, chunks: o.evalChunks });
  const ev = await book.run<EvalStageResult>('eval', evalKey, async () => {
    const common = { data: datasetDir, split: 'eval' as const, ctx: o.evalCtx, chunks: o.evalChunks, threads };
    const pplOf = async (m: string) => (await perplexityOf(m, common));
    const b = await pplOf(f16);
    const mg = await pplOf(merged);
    const fi = await pplOf(final);
    const bl = baseline ? await pplOf(baseline) : undefined;
    const kld = await evalKldMain({ ...common, base: merged, model: final, out: () => {} });
    return {
      outputs: [],
      result: {
        evalTokens: b.tokens,
        ppl: { base: b.ppl, merged: mg.ppl, final: fi.ppl, ...(bl ? { baseline: bl.ppl } : {}) },
        kld: { mean: kld.meanKld, p99: kld.p99Kld, max: kld.maxKld, tokens: kld.count },
      },
    };
  });

  return { f16, datasetDir, trainDir, merged, final, baseline, train: train.result, quantize: quant.result, eval: ev.result, book };
}
