// Rough stage times for the plan, before any work: bytes and floating-point operations of each stage over
// rates measured with qtk's own benchmarks on a 2-core AMD EPYC host (bench/RESULTS.md), scaled by the
// threads the run will use. They say whether a stage takes seconds, hours or days on this CPU, not more:
// the host's share of the CPU moved the same benchmarks 2x between days.
import * as os from 'node:os';
import type { ModelDescription } from '@qtk/core';

/** Measured rates (one thread unless said otherwise). */
export const STAGE_RATES = {
  /** qtk convert to F16, bytes written per second: I/O bound, not scaled by threads (bench/convert.mjs, 2.82 GB in 7.6 s). */
  convertBytesPerSec: 370e6,
  /** qtk quantize, F16 input bytes per second per thread (bench/quantize.mjs at 2 threads: Q8_0 590 MB/s, Q4_K_M 80 MB/s). */
  quantizeBytesPerSecPerThread: { Q8_0: 295e6, other: 40e6 },
  /** qtk lora merge, F16 bytes per second (bench/merge.mjs: 0.91 GB in 12.5 CPU-s; its 52 s wall was a loaded host's I/O wait). */
  mergeBytesPerSec: 73e6,
  /** Start-up of an engine pass (process, model load, tokenizer), seconds per model opened (the demo's calibrate and eval stages). */
  engineStartSeconds: 2,
  /** The engine's inference graphs (perplexity, KLD, imatrix), FLOP/s per thread (bench/engine.mjs, F16 prompt processing). */
  inferenceFlopsPerThread: 50e9,
  /** A LoRA training step (forward, recomputed forward, input gradients, the loss head), FLOP/s per thread
   *  (bench/train-step.mjs: 640 GFLOP per 512-token step at hidden 1024 in 58.3 s on 1 thread). */
  trainFlopsPerThread: 11e9,
  /** `quantize --fit` measures each tensor's error in 7 candidate types (on sampled rows) before it writes: about
   *  3 quantize passes (the demo: 5.8 s where one pass is estimated at 2 s). */
  fitPasses: 3,
  /** GPTQ's reference solver, seconds per parameter on 2 threads (bench/gptq.mjs: 1827 s per 1B parameters). */
  gptqSecondsPerParam: 1827e-9,
} as const;

export interface ModelWork {
  /** Parameters of the repeating layers (what every token passes through). */
  trunkParams: number;
  /** Output projection parameters (vocab × hidden): every scored token's logits. */
  headParams: number;
  /** Bytes of the F16 file. */
  f16Bytes: number;
}

export function modelWork(d: ModelDescription, f16Bytes: number): ModelWork {
  let trunk = 0;
  for (const t of d.tensors) if (/^blk\.\d+\./.test(t.name) && t.ne.length >= 2) trunk += t.ne.reduce((a, b) => a * b, 1);
  return { trunkParams: trunk, headParams: d.shape.nVocab * d.shape.nEmbd, f16Bytes };
}

/** The threads a stage runs on: --threads, or every core. */
export function planThreads(threads: number | undefined): number {
  return threads ?? Math.max(1, os.availableParallelism());
}

const R = STAGE_RATES;

export const convertSeconds = (w: ModelWork): number => w.f16Bytes / R.convertBytesPerSec;

export const quantizeSeconds = (w: ModelWork, type: string, threads: number): number =>
  w.f16Bytes / ((type === 'Q8_0' ? R.quantizeBytesPerSecPerThread.Q8_0 : R.quantizeBytesPerSecPerThread.other) * threads);

export const mergeSeconds = (w: ModelWork): number => w.f16Bytes / R.mergeBytesPerSec;

/** One engine pass over `tokens`, with logits at `scored` of them. */
export const inferenceSeconds = (w: ModelWork, tokens: number, scored: number, threads: number): number =>
  R.engineStartSeconds + (2 * w.trunkParams * tokens + 2 * w.headParams * scored) / (R.inferenceFlopsPerThread * threads);

/** Training on `tokens` tokens: the frozen trunk three times (forward, recomputed forward, input gradients),
 *  the loss head twice (logits and their gradient) for every token. */
export const trainSeconds = (w: ModelWork, tokens: number, threads: number): number =>
  ((6 * w.trunkParams + 4 * w.headParams) * tokens) / (R.trainFlopsPerThread * threads);

export const gptqSeconds = (w: ModelWork, threads: number): number => (w.trunkParams + w.headParams) * R.gptqSecondsPerParam * (2 / threads);

/** 12 s, 4.2 min, 3.1 h, 2.5 days. */
export function durationLabel(seconds: number): string {
  if (seconds < 90) return `${Math.max(1, Math.round(seconds))} s`;
  if (seconds < 90 * 60) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 48 * 3600) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} days`;
}
