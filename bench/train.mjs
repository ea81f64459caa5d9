#!/usr/bin/env node
// Whole-run LoRA training through the qtk binary: `qtk lora train <repo> --model <fixture.gguf>` on a real
// repository (this one's packages/lora/src), at two fixture sizes. Reports tokens/s over the run, the
// measured peak RSS beside the --plan estimate, and the eval loss before and after; copies the last
// run's loss plot to bench/train-loss.svg. The dataset is built (and cached) by a --plan call first, so
// the timed run's peak RSS is the training run's own. Needs `npm run build`.
// Each size runs --runs times (memory and time on a shared machine vary run to run): median, min and max.
// Usage: node bench/train.mjs [--threads 2] [--steps 6] [--hidden 64,256] [--seq-len 256] [--runs 3] [--keep DIR]
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..');
const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    steps: { type: 'string', default: '6' },
    hidden: { type: 'string', default: '64,256' },
    'seq-len': { type: 'string', default: '256' },
    runs: { type: 'string', default: '3' },
    keep: { type: 'string' },
  },
});
const dir = args.keep ?? mkdtempSync(path.join(os.tmpdir(), 'qtk-bench-train-'));
const qtk = path.join(repoRoot, 'packages/cli/dist/main.js');
const input = path.join(repoRoot, 'packages/lora/src');
const env = { ...process.env, QTK_CACHE: path.join(dir, 'cache'), CI: '1' };
const mib = (b) => (b / 2 ** 20).toFixed(1);

const rows = [];
for (const hidden of args.hidden.split(',').map(Number)) {
  const { dir: ckpt } = await generateFixture({ arch: 'qwen3', outDir: path.join(dir, `ckpt-${hidden}`), layers: 2, hidden, heads: 2, kvHeads: 1, headDim: hidden / 2, logitStd: 1, seed: 3 });
  const gguf = (await convertCheckpoint({ input: ckpt, output: path.join(dir, `tiny-${hidden}.gguf`), outtype: 'f32', log: () => {} })).output;
  const runs = [];
  for (let i = 0; i < Number(args.runs); i++) {
    const runDir = path.join(dir, `run-${hidden}-${i}`);
    const flags = ['lora', 'train', input, '--model', gguf, '-o', runDir, '--steps', args.steps, '--seq-len', args['seq-len'], '--batch', '1', '--grad-accum', '2',
      '--rank', '8', '--alpha', '16', '--lr', '2e-2', '--warmup', '0', '--eval-every', '2', '--eval-rows', '2', '--save-every', '0', '--threads', args.threads, '--eval-fraction', '0.25', '--json'];
    // --plan first: it builds (and caches) the dataset, so the timed run's peak RSS is training alone
    if (i === 0) execFileSync(process.execPath, [qtk, ...flags, '--plan'], { env, stdio: ['ignore', 'ignore', 'ignore'] });
    const t0 = performance.now();
    execFileSync(process.execPath, [qtk, ...flags], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const wall = (performance.now() - t0) / 1000;
    const tj = JSON.parse(readFileSync(path.join(runDir, 'train.json'), 'utf8'));
    runs.push({ wall, tps: tj.timings.tokensPerSecond, tokens: tj.plan.trainTokens, peak: tj.result.peakRssBytes, planned: tj.plan.memory.total, before: tj.result.evalLossBefore, after: tj.result.evalLossAfter, runDir });
  }
  rows.push({ hidden, runs });
  copyFileSync(path.join(runs.at(-1).runDir, 'loss.svg'), path.join(here, 'train-loss.svg'));
}

const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const stat = (xs, f) => `${f(med(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
console.log(`qtk lora train, qwen3 fixture (2 layers, vocab 151936, f32), ${args.steps} steps × 2 rows of ≤ ${args['seq-len']} tokens, rank 8, --threads ${args.threads}, ${args.runs} runs per size, ${os.cpus()[0]?.model ?? 'cpu'}; median (min–max)`);
console.log('| hidden | train tokens | wall s | tokens/s (train steps) | peak RSS MiB | --plan MiB | plan/peak | eval loss before → after |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const { hidden, runs } of rows) {
  const r = runs[0];
  console.log(`| ${hidden} | ${r.tokens} | ${stat(runs.map((x) => x.wall), (v) => v.toFixed(1))} | ${stat(runs.map((x) => x.tps), (v) => v.toFixed(1))} | ${stat(runs.map((x) => x.peak), mib)} | ${stat(runs.map((x) => x.planned), mib)} | ${stat(runs.map((x) => x.planned / x.peak), (v) => v.toFixed(2))} | ${r.before.toFixed(4)} → ${r.after.toFixed(4)} |`);
}
if (!args.keep) rmSync(dir, { recursive: true, force: true });
