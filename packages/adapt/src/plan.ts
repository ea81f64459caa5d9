// The plan `qtk adapt` prints before any work: which base to train on (LoRA on f16 or QLoRA on a quantized
// copy: the most precise one whose training step fits the budget), which final types fit the budget at the
// context, and each stage's inputs, outputs and peak memory. A pure function of the model's description.
import { ggmlTensorBytes, servingMemory, trainingMemoryFor, QtkError, type ModelDescription, type TrainingMemory } from '@qtk/core';
import { PLAN_PRESETS, planModel, presetSize, type PresetName } from '@qtk/quantize';
import type { BaseModel } from './describe.js';
import { TRAIN_BASES, type AdaptOptions, type TrainBase } from './options.js';
import { convertSeconds, durationLabel, gptqSeconds, inferenceSeconds, mergeSeconds, modelWork, planThreads, quantizeSeconds, STAGE_RATES, trainSeconds } from './time-estimate.js';

const GIB = 1024 ** 3;
export const gib = (b: number): string => `${(b / GIB).toFixed(2)} GiB`;
/** A size as a user may have typed it: decimal GB beside GiB. */
const bytesLabel = (b: number): string => `${(b / 1e9).toFixed(1)} GB (${gib(b)})`;

export interface TrainChoice {
  base: TrainBase;
  /** Bytes of the base's weights in that type. */
  baseBytes: number;
  memory: TrainingMemory;
  fits: boolean;
}

export interface FinalChoice {
  /** 'preset' (given or recommended) or 'fit' (each tensor's type chosen to a byte budget). */
  kind: 'preset' | 'fit';
  preset?: PresetName;
  /** --fit: bytes for the file plus the context memory at --ctx. */
  fitBudget?: number;
  /** The file size (a preset's estimate; for a fit, its upper bound). */
  fileBytes: number;
  bitsPerWeight?: number;
  /** Tensors per type (preset); a fit's mix is known once its errors are measured. */
  mix?: Record<string, number>;
  /** Memory to serve it at --ctx: weights on the device + KV cache + recurrent state + compute (+ host side). */
  servingBytes: number;
  contextBytes: number;
}

export interface StagePlan {
  name: string;
  inputs: string[];
  outputs: string[];
  /** Estimated peak memory of the stage (bytes), or undefined when it is small. */
  peakBytes?: number;
  /** Rough time on this machine (time-estimate.ts), or undefined where the plan cannot know the work. */
  seconds?: number;
  note?: string;
  skipped?: boolean;
}

export interface AdaptPlan {
  /** What LoRA trains on without quantizing (F16 after conversion, or a GGUF's own type). */
  floatType: string;
  model: { source: string; arch: string; layers: number; hidden: number; vocab: number; params: number; f16Bytes: number };
  budget: { vram: number; headroom: number; usable: number; ctx: number };
  loraParams: number;
  train: TrainChoice;
  trainCandidates: TrainChoice[];
  final: FinalChoice;
  stages: StagePlan[];
  /** Threads the time estimates assume. */
  threads: number;
}

function weightBytes(d: ModelDescription): number {
  return d.tensors.reduce((a, t) => a + ggmlTensorBytes(t.type, t.ne), 0);
}

// the same formula and inputs as `qtk plan --train` and `qtk lora train --plan`
function trainingFor(m: BaseModel, baseBytes: number, o: AdaptOptions, loraParams: number): TrainingMemory {
  return trainingMemoryFor(m.description, { baseWeightBytes: baseBytes, loraParams, tokens: o.seqLen });
}

const presetMix = (choices: readonly { type: string }[]) => {
  const mix: Record<string, number> = {};
  for (const c of choices) mix[c.type] = (mix[c.type] ?? 0) + 1;
  return mix;
};

export function planAdapt(m: BaseModel, o: AdaptOptions): AdaptPlan {
  const d = m.description;
  const s = d.shape;
  const usable = o.vram - o.headroom;
  const loraParams = m.targets.reduce((a, t) => a + o.rank * (t.inFeatures + t.outFeatures), 0);
  const f16Bytes = weightBytes(d);
  const params = d.tensors.reduce((a, t) => a + t.ne.reduce((x, y) => x * y, 1), 0);

  const candidates = TRAIN_BASES.map((base): TrainChoice => {
    const baseBytes = base === 'float' ? f16Bytes : presetSize(d, base).tensorBytes;
    const memory = trainingFor(m, baseBytes, o, loraParams);
    return { base, baseBytes, memory, fits: memory.total <= usable };
  });
  const wanted = o.trainBase === 'auto' ? candidates : candidates.filter((c) => c.base === o.trainBase);
  const train = wanted.find((c) => c.fits);
  if (!train) {
    const least = wanted[wanted.length - 1]!;
    // the longest power-of-two row length at which that base would fit, as the next thing to try
    let shorter: number | undefined;
    for (let t = 2 ** Math.floor(Math.log2(o.seqLen - 1)); t >= 64; t /= 2) {
      if (trainingFor(m, least.baseBytes, { ...o, seqLen: t }, loraParams).total <= usable) { shorter = t; break; }
    }
    throw new QtkError(
      `--vram ${bytesLabel(o.vram)}: training does not fit. The smallest training base${o.trainBase === 'auto' ? '' : ' asked for'}, ${least.base === 'float' ? `LoRA on ${m.floatType}` : `QLoRA on ${least.base}`}, needs ${gib(least.memory.total)} ` +
        `(weights ${gib(least.memory.base)}, LoRA r${o.rank} with AdamW ${gib(least.memory.lora)}, activations at --seq-len ${o.seqLen} ${gib(least.memory.layerInputs + least.memory.layerWorkingSet + least.memory.lossChunk)}) ` +
        `plus ${gib(o.headroom)} headroom. Pass --vram ${Math.ceil(((least.memory.total + o.headroom) / GIB) * 100) / 100}GiB or more` +
        (shorter ? `, or --seq-len ${shorter}` : ', or a smaller --rank'),
      { file: m.input },
    );
  }

  const sp = planModel(d, { vram: o.vram, ctx: o.ctx, parallel: 1, kvType: 'f16', headroom: o.headroom }, PLAN_PRESETS);
  const ctxMem = servingMemory(s, 0, { ctx: o.ctx, parallel: 1, kvType: 'f16' });
  const contextBytes = ctxMem.kvCache + ctxMem.recurrentState + ctxMem.compute;
  let final: FinalChoice;
  if (o.fit !== undefined) {
    const budget = o.fit === 'auto' ? usable : o.fit;
    const smallest = sp.rows[sp.rows.length - 1]!;
    if (smallest.fileBytes + contextBytes > budget) {
      throw new QtkError(
        `--fit ${gib(budget)}: below what the plan can promise at --ctx ${o.ctx}: the smallest preset (${smallest.preset}) is ${gib(smallest.fileBytes)} plus ${gib(contextBytes)} of context memory. ` +
          `Pass a larger --vram/--fit or a smaller --ctx`,
        { file: m.input },
      );
    }
    if (o.fit !== 'auto' && budget > usable) {
      throw new QtkError(`--fit ${gib(budget)} is above what --vram ${gib(o.vram)} leaves (${gib(usable)} after ${gib(o.headroom)} headroom). Pass --fit ${Math.floor((usable / GIB) * 100) / 100}GiB or less, or --fit auto`);
    }
    final = { kind: 'fit', fitBudget: budget, fileBytes: budget - contextBytes, servingBytes: budget, contextBytes };
  } else {
    const preset = (o.type as PresetName | undefined) ?? sp.recommended;
    const row = preset ? sp.rows.find((r) => r.preset === preset) : undefined;
    if (!preset) {
      const smallest = sp.rows[sp.rows.length - 1]!;
      throw new QtkError(
        `--vram ${bytesLabel(o.vram)}: no preset can be served at --ctx ${o.ctx}: the smallest (${smallest.preset}) needs ${gib(smallest.vramBytes)} on the device plus ${gib(o.headroom)} headroom. ` +
          `Pass --vram ${Math.ceil(((smallest.vramBytes + o.headroom) / GIB) * 100) / 100}GiB or more, or a smaller --ctx`,
        { file: m.input },
      );
    }
    const size = presetSize(d, preset);
    const serving = row ? row.vramBytes : servingMemory(s, size.tensorBytes, { ctx: o.ctx, parallel: 1, kvType: 'f16' }).total;
    if (serving > usable) {
      throw new QtkError(
        `--type ${preset} needs ${gib(serving)} to serve at --ctx ${o.ctx}, above the ${gib(usable)} --vram ${bytesLabel(o.vram)} leaves. ` +
          `Pass --type ${sp.recommended ?? 'a smaller preset'}, --fit auto, or a smaller --ctx`,
        { file: m.input },
      );
    }
    final = { kind: 'preset', preset, fileBytes: size.fileBytes, bitsPerWeight: size.bitsPerWeight, mix: presetMix(size.choices), servingBytes: serving, contextBytes };
  }

  const qlora = train.base !== 'float';
  const engineMem = (weights: number, ctx: number) => servingMemory(s, weights, { ctx, parallel: 1, kvType: 'f16' }).total;
  const largestTensor = Math.max(...d.tensors.map((t) => t.ne.reduce((a, b) => a * b, 1) * 4));
  const stages: StagePlan[] = [
    m.kind === 'gguf'
      ? { name: 'convert', inputs: [m.input], outputs: [], skipped: true, note: 'the input is a GGUF already' }
      : { name: 'convert', inputs: [m.input], outputs: ['convert/model-F16.gguf'], note: `${gib(f16Bytes)} written, streamed in chunks` },
    { name: 'dataset', inputs: ['<repo>', 'the model\'s tokenizer'], outputs: ['dataset/train.arrow', 'dataset/eval.arrow'], note: `rows of ${o.seqLen} tokens, ${(o.evalFraction * 100).toFixed(0)} % of files held out` },
    qlora
      ? { name: 'train-base', inputs: ['convert/model-F16.gguf'], outputs: [`train-base/model-${train.base}.gguf`], peakBytes: largestTensor, note: `QLoRA base, ${gib(train.baseBytes)}` }
      : { name: 'train-base', inputs: [], outputs: [], skipped: true, note: `LoRA on the ${m.floatType} file itself` },
    {
      name: 'train', inputs: [qlora ? `train-base/model-${train.base}.gguf` : 'convert/model-F16.gguf', 'dataset/'], outputs: ['train/run/adapter.gguf', 'train/run/adapter/ (PEFT)', 'train/run/loss.png', 'train/run/checkpoints/'],
      peakBytes: train.memory.total,
      note: `${qlora ? `QLoRA on ${train.base}` : `LoRA on ${m.floatType}`}, r${o.rank}, ${(loraParams / 1e6).toFixed(2)} M trainable parameters, ${o.steps !== undefined ? `${o.steps} steps × ${o.batch * o.gradAccum * o.seqLen} tokens` : `${o.epochs} epoch(s)`}`,
    },
    { name: 'merge', inputs: ['convert/model-F16.gguf', 'train/run/adapter.gguf'], outputs: ['merge/merged.gguf'], peakBytes: largestTensor, note: 'one tensor in f32 at a time; W + scale·B·A in f32, tensor by tensor' },
    o.method === 'imatrix'
      ? { name: 'calibrate', inputs: ['merge/merged.gguf', 'dataset/train.arrow'], outputs: ['calibrate/imatrix.gguf'], peakBytes: engineMem(f16Bytes, 512), note: `${o.calibTokens} tokens` }
      : { name: 'calibrate', inputs: [], outputs: [], skipped: true, note: o.method === 'gptq' ? 'GPTQ collects its Hessians inside quantize' : 'plain rounding needs none' },
    {
      name: 'quantize', inputs: ['merge/merged.gguf', ...(o.method === 'imatrix' ? ['calibrate/imatrix.gguf'] : [])], outputs: ['quantize/model.gguf'],
      peakBytes: o.method === 'gptq' ? engineMem(f16Bytes, 512) : largestTensor,
      note: final.kind === 'fit' ? `each tensor's type chosen by measured error to fit ${gib(final.fitBudget!)} with the context` : `${final.preset}${o.method === 'rtn' ? '' : ` with ${o.method}`}`,
    },
    ...(o.baseline ? [{ name: 'baseline', inputs: ['convert/model-F16.gguf', 'quantize/model.gguf (its types)'], outputs: ['baseline/model.gguf'], peakBytes: largestTensor, note: 'the base model with the final file\'s types, plain rounding' }] : []),
    {
      name: 'eval', inputs: ['dataset/eval.arrow', 'convert/model-F16.gguf', 'merge/merged.gguf', 'quantize/model.gguf'], outputs: ['report.md', 'report.json', 'loss.png'],
      peakBytes: engineMem(f16Bytes, o.evalCtx), note: `the engine loads one unquantized file at a time; perplexity on held-out files (windows of ${o.evalCtx}, ≤ ${o.evalChunks}), KLD of the final file vs the merged model`,
    },
    { name: 'serve', inputs: ['quantize/model.gguf'], outputs: [], peakBytes: final.servingBytes, note: `with --serve, at --ctx ${o.ctx}` },
  ];
  const w = modelWork(d, f16Bytes);
  const threads = planThreads(o.threads);
  const trainTokens = o.steps !== undefined ? o.steps * o.batch * o.gradAccum * o.seqLen : undefined;
  const evalTokens = o.evalChunks * o.evalCtx;
  const finalType = final.kind === 'preset' ? final.preset! : 'other';
  const quantizeTime = o.method === 'gptq'
    ? gptqSeconds(w, threads) + inferenceSeconds(w, o.calibTokens, o.calibTokens, threads)
    : quantizeSeconds(w, finalType, threads) * (final.kind === 'fit' ? STAGE_RATES.fitPasses : 1);
  const seconds: Record<string, number | undefined> = {
    convert: convertSeconds(w),
    'train-base': qlora ? quantizeSeconds(w, train.base, threads) : undefined,
    train: trainTokens === undefined ? undefined : trainSeconds(w, trainTokens, threads),
    merge: mergeSeconds(w),
    calibrate: inferenceSeconds(w, o.calibTokens, 0, threads),
    quantize: quantizeTime,
    baseline: quantizeSeconds(w, finalType, threads),
    // perplexity of the base, merged and final files (and the baseline), then the KLD pass over two models
    eval: inferenceSeconds(w, evalTokens, evalTokens / 2, threads) * (o.baseline ? 6 : 5),
  };
  for (const st of stages) if (!st.skipped) st.seconds = seconds[st.name];
  return {
    model: { source: d.source, arch: m.arch, layers: s.nLayer, hidden: s.nEmbd, vocab: s.nVocab, params, f16Bytes },
    budget: { vram: o.vram, headroom: o.headroom, usable, ctx: o.ctx },
    floatType: m.floatType, loraParams, train, trainCandidates: candidates, final, stages, threads,
  };
}

export function formatAdaptPlan(p: AdaptPlan): string {
  const lines: string[] = [];
  const m = p.model;
  lines.push(`plan: ${m.source}: ${m.arch}, ${m.layers} layers, hidden ${m.hidden}, vocab ${m.vocab}, ${(m.params / 1e9).toFixed(2)} B parameters (${p.floatType} ${gib(m.f16Bytes)})`);
  lines.push(`budget: ${gib(p.budget.vram)} − ${gib(p.budget.headroom)} headroom = ${gib(p.budget.usable)}; serving context ${p.budget.ctx}`);
  lines.push('training step memory by base (weights + LoRA/AdamW + activations + loss chunk + runtime):');
  for (const c of p.trainCandidates) {
    lines.push(`  ${(c.base === 'float' ? `LoRA  ${p.floatType}` : `QLoRA ${c.base}`).padEnd(13)} ${gib(c.memory.total).padStart(11)}  ${c.fits ? 'fits' : 'does not fit'}${c === p.train ? '  ← chosen' : ''}`);
  }
  const f = p.final;
  if (f.kind === 'preset') {
    const mix = Object.entries(f.mix ?? {}).sort((a, b) => b[1] - a[1]).map(([t, n]) => `${t} ×${n}`).join(', ');
    lines.push(`final: ${f.preset}, ≈ ${gib(f.fileBytes)} (${f.bitsPerWeight!.toFixed(2)} bpw; tensors ${mix}); serving at ctx ${p.budget.ctx}: ${gib(f.servingBytes)} on the device (context ${gib(f.contextBytes)})`);
  } else {
    lines.push(`final: fit to ${gib(f.fitBudget!)} with the context: file ≤ ${gib(f.fileBytes)} + context ${gib(f.contextBytes)} at ctx ${p.budget.ctx}; the type mix is chosen by measured error`);
  }
  const timed = p.stages.filter((s) => s.seconds !== undefined);
  const total = timed.reduce((a, s) => a + s.seconds!, 0);
  lines.push(`stages (time: a rough estimate for ${p.threads} thread(s) of this CPU from qtk's benchmark rates; ≈ ${durationLabel(total)} for the timed stages):`);
  for (const s of p.stages) {
    const io = s.skipped ? 'skipped' : `${s.inputs.join(' + ')} → ${s.outputs.join(', ') || '—'}`;
    const time = s.skipped ? '' : s.seconds !== undefined ? `; ≈ ${durationLabel(s.seconds)}` : s.name === 'train' ? '; time: per epoch, known once the dataset is built' : '';
    lines.push(`  ${s.name.padEnd(10)} ${io}${s.peakBytes !== undefined && !s.skipped ? `; peak ≈ ${gib(s.peakBytes)}` : ''}${time}${s.note ? ` (${s.note})` : ''}`);
  }
  return lines.join('\n');
}
