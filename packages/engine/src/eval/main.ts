// `qtk eval ppl`, `qtk eval kld` and `qtk imatrix`: library entry points the CLI calls.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { assertOutputNotInput, createProgress, GgufReader, GgufWriter, onInterrupt, QtkError } from '@qtk/core';
import type { DeviceChoice } from '../ggml/backend.js';
import { readModelParams } from '../model/hparams.js';
import { Model, type Session } from '../model/model.js';
import type { LoraSpec } from '../model/lora.js';
import { ImatrixCollector } from './imatrix.js';
import { klDivergence, type KldResult } from './kld.js';
import { NllStats, scoreWindow } from './perplexity.js';
import { contextWindows } from './tokenize.js';
import { loadEvalData } from './data.js';
import type { DatasetSplit } from '../data/dataset.js';

export interface EvalCommonArgs {
  /** A UTF-8 text file, a `qtk dataset build` folder, or one of its .arrow splits. */
  data: string;
  /** The dataset split to read from a dataset folder (default eval). */
  split?: DatasetSplit;
  /** Window size (llama.cpp's -c; default 512). */
  ctx?: number;
  /** Tokens per graph (default 512). */
  batch?: number;
  /** Stop after this many windows (llama.cpp's --chunks). */
  chunks?: number;
  device?: DeviceChoice;
  threads?: number;
  json?: boolean;
  /** GGUF LoRA adapters applied to the model judged (ppl: the model; kld: <model>, not <base>). */
  lora?: readonly LoraSpec[];
  /** Where results go (default: stdout). */
  out?: (line: string) => void;
}

async function windowsFor(model: string, a: EvalCommonArgs): Promise<{ windows: number[][]; nCtx: number; source: string }> {
  const nCtx = a.ctx ?? 512;
  // our own reader first: a missing file or an unsupported architecture is reported before llama.cpp loads it
  const r = await GgufReader.open(model);
  let nVocab: number;
  try {
    nVocab = readModelParams(r).nVocab;
  } finally {
    await r.close();
  }
  // with --chunks a dataset is read only as far as the windows asked for (at least the 2 windows llama-perplexity needs)
  const maxTokens = a.chunks !== undefined ? Math.max(2, a.chunks) * nCtx : undefined;
  const d = await loadEvalData(model, nVocab, { data: a.data, split: a.split, maxTokens });
  const windows = contextWindows(d, nCtx, d.source);
  return { windows: a.chunks !== undefined ? windows.slice(0, Math.max(1, a.chunks)) : windows, nCtx, source: d.source };
}

/** Seconds the last Model.load of this module took (reported with --json). */
let lastLoadSeconds = 0;

async function openSession(model: string, a: EvalCommonArgs, nCtx: number, lora: readonly LoraSpec[] = []): Promise<Session> {
  const t0 = performance.now();
  const m = await Model.load(model, { device: a.device, threads: a.threads });
  lastLoadSeconds = (performance.now() - t0) / 1000;
  try {
    await m.applyLora(lora);
  } catch (e) {
    m.free();
    throw e;
  }
  if (nCtx > m.params.nCtxTrain) {
    m.free();
    throw new QtkError(`${model}: --ctx ${nCtx} is longer than the model's training context (${m.params.nCtxTrain}). Pass a smaller --ctx.`);
  }
  return m.session({ nCtx, nBatch: a.batch ?? 512 });
}

export interface PplResult {
  ppl: number;
  pplError: number;
  tokens: number;
  windows: number;
  nCtx: number;
  tokensPerSecond: number;
  /** Seconds spent loading the model (mapping the file, repacking). */
  loadSeconds: number;
  /** Seconds from the process's start to the first window (start-up, reading the text, loading). */
  startupSeconds: number;
}

export async function perplexityOf(model: string, a: EvalCommonArgs): Promise<PplResult> {
  const { windows, nCtx } = await windowsFor(model, a);
  const s = await openSession(model, a, nCtx, a.lora);
  const startupSeconds = performance.now() / 1000; // performance's origin is the process's start
  const stats = new NllStats();
  const progress = createProgress({ title: 'perplexity', total: windows.length * nCtx, kind: 'count', unit: 'tok' });
  const t0 = performance.now();
  try {
    for (const w of windows) {
      scoreWindow(s, w, stats);
      progress.tick(nCtx, `PPL ${stats.ppl.toFixed(4)}`);
    }
  } finally {
    progress.done();
    s.model.free();
    s.free();
  }
  const secs = (performance.now() - t0) / 1000;
  return { ppl: stats.ppl, pplError: stats.pplError, tokens: stats.count, windows: windows.length, nCtx, tokensPerSecond: (windows.length * nCtx) / secs, loadSeconds: lastLoadSeconds, startupSeconds };
}

export async function evalPplMain(a: EvalCommonArgs & { model: string }): Promise<PplResult> {
  const r = await perplexityOf(a.model, a);
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  if (a.json) out(JSON.stringify(r));
  else out(`${path.basename(a.model)}: PPL = ${r.ppl.toFixed(4)} +/- ${r.pplError.toFixed(5)} (${r.windows} windows of ${r.nCtx}, ${r.tokens} scored tokens, ${r.tokensPerSecond.toFixed(1)} tok/s)`);
  return r;
}

export async function evalKldMain(a: EvalCommonArgs & { base: string; model: string }): Promise<KldResult> {
  // Both files are checked before any tokenizing, so a wrong path fails first and alone.
  const other = await GgufReader.open(a.model);
  await other.close();
  const { windows, nCtx } = await windowsFor(a.base, a);
  const progress = createProgress({ title: 'kl-divergence', total: 2 * windows.length * nCtx, kind: 'count', unit: 'tok' });
  let r: KldResult;
  try {
    r = await klDivergence(() => openSession(a.base, a, nCtx), () => openSession(a.model, a, nCtx, a.lora), windows, () => progress.tick(nCtx));
  } finally {
    progress.done();
  }
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  if (a.json) out(JSON.stringify(r));
  else {
    out(`base ${path.basename(a.base)} vs ${path.basename(a.model)}: ${r.count} tokens (${windows.length} windows of ${nCtx})`);
    out(`PPL(base)       : ${r.pplBase.toFixed(6)} ± ${r.pplBaseError.toFixed(6)}`);
    out(`PPL(Q)          : ${r.ppl.toFixed(6)} ± ${r.pplError.toFixed(6)}`);
    out(`PPL(Q)-PPL(base): ${r.deltaPpl.toFixed(6)} ± ${r.deltaPplError.toFixed(6)}`);
    out(`Mean KLD        : ${r.meanKld.toFixed(6)} ± ${r.meanKldError.toFixed(6)}`);
    out(`99.0% KLD       : ${r.p99Kld.toFixed(6)}    99.9% KLD: ${r.p999Kld.toFixed(6)}    Max KLD: ${r.maxKld.toFixed(6)}`);
    out(`Same top p      : ${(100 * r.sameTop).toFixed(3)} ± ${(100 * r.sameTopError).toFixed(3)} %`);
    out(`RMS Δp          : ${(100 * r.rmsDeltaP).toFixed(3)} %`);
  }
  return r;
}

export async function imatrixMain(a: EvalCommonArgs & { model: string; output: string; force?: boolean; processOutput?: boolean }): Promise<{ entries: number; windows: number; tokens: number }> {
  await assertOutputNotInput(a.output, [a.model, a.data], { flag: '--output' });
  if (!a.force && (await fs.stat(a.output).then(() => true, () => false))) {
    throw new QtkError(`${a.output}: already exists. Pass --force to overwrite it, or choose another -o path.`, { file: a.output });
  }
  let writer: GgufWriter | undefined;
  // SIGINT/SIGTERM: nothing is on disk until the end; then only the temp file, which is removed.
  const offInterrupt = onInterrupt(async () => {
    await writer?.abort();
    return writer ? `removed the partial ${a.output}` : 'nothing was written';
  }, 'imatrix');
  let s: Session;
  let windows: number[][], nCtx: number, source: string;
  try {
    ({ windows, nCtx, source } = await windowsFor(a.model, a));
    s = await openSession(a.model, a, nCtx);
  } catch (e) {
    offInterrupt();
    throw e;
  }
  const col = new ImatrixCollector({ processOutput: a.processOutput });
  const hooks = col.hooks();
  const stats = new NllStats();
  const progress = createProgress({ title: 'imatrix', total: windows.length * nCtx, kind: 'count', unit: 'tok' });
  try {
    for (const w of windows) {
      // Each window is one synchronous graph run; yield between them so a signal is seen mid-run.
      await new Promise((r) => setImmediate(r));
      // llama-imatrix also reports the perplexity of the second halves; same positions as eval ppl
      scoreWindow(s, w, stats, { hooks });
      progress.tick(nCtx, `PPL ${stats.ppl.toFixed(4)}`);
    }
    progress.done();
    await col.write(a.output, { datasets: [source], chunkCount: windows.length, chunkSize: nCtx, overwrite: a.force, onOpen: (w) => { writer = w; } });
  } finally {
    offInterrupt();
    progress.done();
    s.model.free();
    s.free();
  }
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const r = { entries: col.entries.size, windows: windows.length, tokens: windows.length * nCtx };
  if (a.json) out(JSON.stringify({ ...r, output: a.output, ppl: stats.ppl }));
  else out(`${a.output}: importance of ${r.entries} weight matrices from ${r.windows} windows of ${nCtx} tokens (PPL ${stats.ppl.toFixed(4)})`);
  return r;
}
