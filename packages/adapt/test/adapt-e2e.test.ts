// `qtk adapt` end to end on a tiny model and a real repository: it completes; a run killed (SIGKILL) after
// a training checkpoint and started again skips its finished stages and ends with the same final bytes as
// an uninterrupted run; the final GGUF loads in llama.cpp, fits the budget, and scores the held-out files
// better than the base model quantized with the same types (llama.cpp judges, not the engine).
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufReader, describeGguf, servingMemory } from '@qtk/core';
import { readTrainRows } from '@qtk/lora';
import { getLlama } from 'node-llama-cpp';
import { adaptMain, type AdaptResult } from '../src/index.js';
import { ADAPT_FLAGS, ADAPT_REPO, adaptFixtureGguf } from './fixture.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const quiet = () => {};
const quietStream = { write: () => true } as unknown as NodeJS.WriteStream;
let root: string;
let gguf: string;
let whole: AdaptResult;
let resumed: AdaptResult;
let killedAfter: string[];

function run(out: string): Promise<AdaptResult> {
  return adaptMain({ model: gguf, repo: ADAPT_REPO, out, flags: { ...ADAPT_FLAGS }, log: quiet, print: quiet, trainErr: quietStream });
}

/** Starts the run in a child and SIGKILLs it as soon as a training checkpoint is on disk. */
async function killAfterCheckpoint(out: string): Promise<void> {
  const child = spawn(process.execPath, [path.join(here, 'run-ts.mjs'), path.join(here, 'adapt-child.ts'), gguf, out], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: '1' } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const ckpt = path.join(out, 'train', 'run', 'checkpoints');
  for (let done = false; !done;) {
    await new Promise((r) => setTimeout(r, 50));
    const names = await fs.readdir(ckpt).catch(() => [] as string[]);
    if (names.some((n) => n.startsWith('step-'))) { child.kill('SIGKILL'); done = true; }
    if (child.exitCode !== null) throw new Error(`the run ended before a checkpoint (exit ${child.exitCode}): ${stderr}`);
  }
  await exited;
}

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-adapt-e2e-'));
  gguf = await adaptFixtureGguf(root);
  whole = await run(path.join(root, 'whole'));
  const killed = path.join(root, 'killed');
  await killAfterCheckpoint(killed);
  killedAfter = Object.keys(JSON.parse(await fs.readFile(path.join(killed, 'stages.json'), 'utf8')).stages);
  resumed = await run(killed);
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/** Mean −log p of each next token under llama.cpp (node-llama-cpp), over one held-out row's first tokens. */
async function llamaNll(model: string, tokens: number[]): Promise<number> {
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const m = await llama.loadModel({ modelPath: model, gpuLayers: 0 });
  try {
    const ctx = await m.createContext({ contextSize: 256, batchSize: 64, threads: 2, sequences: 1 });
    try {
      const out = await ctx.getSequence().controlledEvaluate(tokens.slice(0, -1).map((t) => [t as never, { generateNext: { probabilities: true } }] as never));
      let nll = 0;
      out.forEach((o, i) => { nll -= Math.log(o?.next?.probabilities?.get(tokens[i + 1] as never) ?? 1e-30); });
      return nll / (tokens.length - 1);
    } finally {
      await ctx.dispose();
    }
  } finally {
    await m.dispose();
  }
}

describe('qtk adapt', () => {
  it('completes every stage of an uninterrupted run', () => {
    expect(whole.pipeline!.book.ran).toEqual(['dataset', 'train', 'merge', 'quantize', 'baseline', 'eval']);
  });

  it('was killed inside training, after the dataset stage had finished', () => {
    expect(killedAfter).toEqual(['dataset']);
  });

  it('resumes at the first unfinished stage: the finished dataset stage is reused', () => {
    expect(resumed.pipeline!.book.reused).toEqual(['dataset']);
  });

  it('the resumed run ends with the same final GGUF bytes as the uninterrupted one', async () => {
    const a = await fs.readFile(whole.pipeline!.final);
    const b = await fs.readFile(resumed.pipeline!.final);
    expect(Buffer.compare(a, b)).toBe(0);
  });

  it('the final GGUF fits the budget: file plus context memory at --ctx', async () => {
    const final = whole.pipeline!.final;
    const r = await GgufReader.open(final);
    let context: number;
    try {
      const m = servingMemory(describeGguf(final, r, r.tensors, r.dataOffset).shape, 0, { ctx: 256, parallel: 1, kvType: 'f16' });
      context = m.kvCache + m.recurrentState + m.compute + m.output;
    } finally {
      await r.close();
    }
    expect((await fs.stat(final)).size + context).toBeLessThanOrEqual(2 ** 30);
  });

  it('the final GGUF scores held-out text better in llama.cpp than the base quantized with the same types', async () => {
    const rows = await readTrainRows(path.join(whole.pipeline!.datasetDir, 'eval.arrow'), 128);
    const tokens = Array.from(rows.rows[0]!.tokens.slice(0, 33));
    const adapted = await llamaNll(whole.pipeline!.final, tokens);
    const base = await llamaNll(whole.pipeline!.baseline!, tokens);
    console.log(`llama.cpp held-out NLL over ${tokens.length - 1} tokens: final ${adapted.toFixed(4)}, base quantized alike ${base.toFixed(4)}`);
    expect(adapted).toBeLessThan(base);
  });
});
