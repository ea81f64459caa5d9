#!/usr/bin/env node
// Whole-run LoRA training through the qtk binary: `qtk lora train <repo> --model <fixture.gguf>` on a real
// repository (this one's packages/lora/src), at two fixture sizes. Reports tokens/s over the run, the
// measured peak RSS beside the --plan estimate, and the eval loss before and after; copies the last
// run's loss plot to bench/train-loss.svg. The dataset is built (and cached) by a --plan call first, so
// the timed run's peak RSS is the training run's own. Needs `npm run build`.
// Each size runs --runs times (memory and time on a shared machine vary run to run): median, min and max.
// With --arch qwen3_5 (the default), each qtk run is followed by bench/train_step_torch.py (PyTorch on CPU,
// the Hugging Face math) training the same checkpoint for the same steps, tokens per step, rank, alpha,
// targets (all linears), lr and threads; its whole-process time and peak RSS sit beside qtk's.
// On a machine shared with other work pass --threads 1 (ggml's threads meet at a spinning barrier per node).
// Usage: node bench/train.mjs [--arch qwen3_5|qwen3] [--threads 2] [--steps 6] [--hidden 64,256] [--seq-len 256] [--runs 3] [--keep DIR]
import { execFileSync, spawnSync } from 'node:child_process';
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
    arch: { type: 'string', default: 'qwen3_5' },
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
const withTorch = args.arch === 'qwen3_5';
const accum = 2, lr = '2e-2';
// rank 8 must fit in_proj_a/b (value heads × hidden), so qwen3_5 gets 8 value heads; 4 layers = 3 DeltaNet + 1 attention
const shape = withTorch ? { layers: 4, linearKeyHeads: 2, linearValueHeads: 8 } : { layers: 2, heads: 2, kvHeads: 1 };
const wallOf = (cmd, argv, opts) => { const t0 = performance.now(); const r = spawnSync(cmd, argv, opts); if (r.status !== 0) throw new Error(`${path.basename(argv[0])} failed (exit ${r.status})`); return { r, wall: (performance.now() - t0) / 1000 }; };

const rows = [];
for (const hidden of args.hidden.split(',').map(Number)) {
  const { dir: ckpt } = await generateFixture({ arch: args.arch, outDir: path.join(dir, `ckpt-${hidden}`), hidden, ...shape, ...(withTorch ? {} : { headDim: hidden / 2 }), logitStd: 1, seed: 3 });
  const gguf = (await convertCheckpoint({ input: ckpt, output: path.join(dir, `tiny-${hidden}.gguf`), outtype: 'f32', log: () => {} })).output;
  const runs = [];
  for (let i = 0; i < Number(args.runs); i++) {
    const runDir = path.join(dir, `run-${hidden}-${i}`);
    const flags = ['lora', 'train', input, '--model', gguf, '-o', runDir, '--steps', args.steps, '--seq-len', args['seq-len'], '--batch', '1', '--grad-accum', String(accum),
      '--rank', '8', '--alpha', '16', '--lr', lr, '--warmup', '0', '--eval-every', '2', '--eval-rows', '2', '--save-every', '0', '--threads', args.threads, '--eval-fraction', '0.25', '--json'];
    // --plan first: it builds (and caches) the dataset, so the timed run's peak RSS is training alone
    if (i === 0) execFileSync(process.execPath, [qtk, ...flags, '--plan'], { env, stdio: ['ignore', 'ignore', 'ignore'] });
    const { wall } = wallOf(process.execPath, [qtk, ...flags], { env, stdio: ['ignore', 'ignore', 'inherit'] });
    const tj = JSON.parse(readFileSync(path.join(runDir, 'train.json'), 'utf8'));
    const run = { wall, tps: tj.timings.tokensPerSecond, tokens: tj.plan.trainTokens, peak: tj.result.peakRssBytes, planned: tj.plan.memory.total, before: tj.result.evalLossBefore, after: tj.result.evalLossAfter, runDir };
    if (withTorch) {
      // same steps × accum sequences, each as long as qtk's mean row, so both see the same tokens
      const T = Math.round(run.tokens / (Number(args.steps) * accum));
      const py = wallOf('/usr/bin/python3', [path.join(here, 'train_step_torch.py'), ckpt, String(T), '8', args.threads, '0', args.steps, String(accum), lr], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
      const tr = JSON.parse(py.r.stdout.split('\n').find((l) => l.startsWith('{')));
      run.torch = { wall: py.wall, tokens: tr.tokens, tps: tr.tokens / tr.times.reduce((a, b) => a + b, 0), peak: tr.peakRssBytes, version: tr.torch };
    }
    runs.push(run);
  }
  rows.push({ hidden, runs });
  copyFileSync(path.join(runs.at(-1).runDir, 'loss.svg'), path.join(here, 'train-loss.svg'));
}

const med = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const stat = (xs, f) => `${f(med(xs))} (${f(Math.min(...xs))}–${f(Math.max(...xs))})`;
const load = os.loadavg()[0].toFixed(1);
console.log(`qtk lora train, ${args.arch} fixture (${shape.layers} layers, vocab 151936, f32), ${args.steps} steps × 2 rows of ≤ ${args['seq-len']} tokens, rank 8, --threads ${args.threads}, ${args.runs} runs per size, ${os.cpus()[0]?.model ?? 'cpu'}, 1-min load average ${load} at the end; median (min–max)`);
console.log('| hidden | train tokens | wall s | tokens/s (train steps) | peak RSS MiB | --plan MiB | plan/peak | eval loss before → after |');
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
for (const { hidden, runs } of rows) {
  const r = runs[0];
  console.log(`| ${hidden} | ${r.tokens} | ${stat(runs.map((x) => x.wall), (v) => v.toFixed(1))} | ${stat(runs.map((x) => x.tps), (v) => v.toFixed(1))} | ${stat(runs.map((x) => x.peak), mib)} | ${stat(runs.map((x) => x.planned), mib)} | ${stat(runs.map((x) => x.planned / x.peak), (v) => v.toFixed(2))} | ${r.before.toFixed(4)} → ${r.after.toFixed(4)} |`);
}
if (withTorch) {
  const ver = rows[0].runs[0].torch.version;
  console.log(`\nSame runs beside PyTorch ${ver} CPU (bench/train_step_torch.py: ${args.steps} AdamW steps × ${accum} sequences, rank 8 alpha 16 on all linears, ${args.threads} thread(s)); whole = tokens ÷ process wall time (load, evals, writes included), steps = tokens ÷ time in train steps; median (min–max), best`);
  console.log('| hidden | impl | tokens | whole tokens/s | best | steps tokens/s | best | peak RSS MiB | least |');
  console.log('| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const { hidden, runs } of rows) {
    for (const [impl, rs] of [['qtk', runs], ['PyTorch', runs.map((x) => x.torch)]]) {
      const whole = rs.map((x) => x.tokens / x.wall), steps = rs.map((x) => x.tps), peak = rs.map((x) => x.peak);
      console.log(`| ${hidden} | ${impl} | ${rs[0].tokens} | ${stat(whole, (v) => v.toFixed(1))} | ${Math.max(...whole).toFixed(1)} | ${stat(steps, (v) => v.toFixed(1))} | ${Math.max(...steps).toFixed(1)} | ${stat(peak, mib)} | ${mib(Math.min(...peak))} |`);
    }
  }
}
if (!args.keep) rmSync(dir, { recursive: true, force: true });
