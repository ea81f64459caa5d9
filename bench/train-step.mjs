#!/usr/bin/env node
// One LoRA training step (forward + backward, rank 16 on every target) in tokens/s: qtk's engine on a
// generated qwen3_5 checkpoint (hidden 1024, 8 layers) converted to f32 GGUF, beside
// bench/train_step_torch.py (PyTorch on CPU, the Hugging Face math) on the same checkpoint, tokens,
// LoRA configuration and threads, in one run. Needs Debian's python3-torch (bench only, never a test
// dependency): installed here with `apt-get install -y python3-torch` (through sudo unless root) when missing.
// Usage: npm run build && node bench/train-step.mjs [--tokens 512] [--threads 2] [--reps 3] [--dir D]
// On a machine shared with other work, --threads 1: ggml's CPU threads meet at a spinning barrier after
// every graph node, so a thread that the scheduler takes away stalls the other at each of the ~3,000
// nodes of a step (measured 5-40x slower at load average 7-18 on 2 cores).
// Appends a block to bench/RESULTS.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { LoraTrainModel, Model } from '@qtk/engine';

const { values: args } = parseArgs({
  options: {
    tokens: { type: 'string', default: '512' },
    threads: { type: 'string', default: '2' },
    reps: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'qtk-bench-train-step') },
  },
});
// Debian's interpreter, where apt's python3-torch lives (a pyenv python3 earlier on PATH would not see it)
const PY = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const T = Number(args.tokens), threads = Number(args.threads), reps = Number(args.reps), rank = 16;
const hf = path.join(args.dir, 'hf'), gguf = path.join(args.dir, 'model-f32.gguf');
const shape = { hidden: 1024, layers: 8, intermediate: 3072, heads: 8, kvHeads: 2, headDim: 128, linearKeyHeads: 4, linearValueHeads: 8, linearKeyHeadDim: 128, linearValueHeadDim: 128 };
if (!existsSync(gguf)) {
  await generateFixture({ arch: 'qwen3_5', outDir: hf, seed: 7, overwrite: true, ...shape });
  await convertCheckpoint({ input: hf, output: gguf, outtype: 'f32', log: () => {} });
}

const median = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const load0 = os.loadavg()[0];
const model = await Model.load(gguf, { device: 'cpu', threads, repack: false });
const train = await LoraTrainModel.create(model, { rank, alpha: 2 * rank, seed: 1 }, { seqLen: T });
train.setParams(train.params().map((p, i) => ({ ...p, b: p.b.map((_, j) => Math.sin(i * 31 + j) * 0.01) })));
const tokens = Int32Array.from({ length: T }, (_, i) => (i * 7919) % 150000);
const batch = { tokens, lossMask: new Uint8Array(T).fill(1) };
train.lossAndGradients(batch); // warm-up: allocator buffers sized
const qtk = [];
let loss = 0;
for (let r = 0; r < reps; r++) {
  const t0 = performance.now();
  loss = train.lossAndGradients(batch).lossSum;
  qtk.push((performance.now() - t0) / 1000);
  console.log(`qtk step ${r + 1}/${reps}: ${qtk[r].toFixed(1)} s`);
}
const nTargets = train.targets.length;
train.free();
model.free();

try {
  execFileSync(PY, ['-c', 'import torch'], { stdio: 'ignore' });
} catch {
  console.log('installing python3-torch (apt)…');
  const apt = ['apt-get', 'install', '-y', '--no-install-recommends', 'python3-torch'];
  const root = process.getuid?.() === 0;
  execFileSync(root ? apt[0] : 'sudo', root ? apt.slice(1) : apt, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}
const py = spawnSync(PY, [path.join(repo, 'bench/train_step_torch.py'), hf, String(T), String(rank), String(threads), String(reps)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
const line = py.stdout.split('\n').find((l) => l.startsWith('{'));
if (!line) throw new Error(`PyTorch script failed (exit ${py.status}; its messages are above)`);
const torch = JSON.parse(line);

const tq = median(qtk), tt = median(torch.times);
const fmt = (a) => a.map((x) => x.toFixed(1)).join(' / ');
const row = (name, times, loss) => {
  const tps = times.map((x) => T / x);
  return `| ${name} | ${fmt(times)} | ${median(times).toFixed(1)} | ${(T / median(times)).toFixed(2)} | ${Math.min(...tps).toFixed(2)}–${Math.max(...tps).toFixed(2)} | ${Math.max(...tps).toFixed(2)} | ${loss.toFixed(1)} |`;
};
const block = [
  '',
  '## LoRA training step vs PyTorch (`bench/train-step.mjs`)',
  '',
  `${new Date().toISOString().slice(0, 10)} · qwen3_5 checkpoint hidden ${shape.hidden}, ${shape.layers} layers (6 Gated DeltaNet 4×8 heads of 128, 2 gated attention 8×128 / 2 KV), ff ${shape.intermediate}, vocab 151936, f32 weights · ${T} tokens, LoRA rank ${rank} alpha ${2 * rank} on all ${nTargets} targets · CPU ${os.cpus()[0]?.model ?? 'cpu'} (${os.cpus().length} cores shared with other jobs; 1-min load average ${load0.toFixed(1)} at the start, ${os.loadavg()[0].toFixed(1)} at the end), ${threads} thread(s) each · \`node bench/train-step.mjs --tokens ${T} --threads ${threads} --reps ${reps}\``,
  '',
  '| implementation | step seconds (each run) | median s | tokens/s (median) | tokens/s spread | tokens/s best | loss (Σ nats) |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  row('qtk engine (ggml, chunked DeltaNet, layer-wise recompute)', qtk, loss),
  row(`PyTorch ${torch.torch} CPU (HF math, torch chunked delta rule, autograd)`, torch.times, torch.loss),
  '',
  `Ratio (qtk tokens/s ÷ PyTorch tokens/s, medians): **${(tt / tq).toFixed(2)}**. The losses differ because the two draw their own LoRA A and B.`,
  '',
];
console.log(block.join('\n'));
appendFileSync(path.join(repo, 'bench/RESULTS.md'), block.join('\n'));
