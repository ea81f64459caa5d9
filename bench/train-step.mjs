#!/usr/bin/env node
// One LoRA training step (forward + backward, rank 16 on every target) in tokens/s: qtk's engine on a
// generated qwen3_5 checkpoint (hidden 1024, 8 layers) converted to f32 GGUF, beside
// bench/train_step_torch.py (PyTorch on CPU, the Hugging Face math) on the same checkpoint, tokens,
// LoRA configuration and threads, in one run. Installs Debian's python3-torch with apt when missing.
// Usage: npm run build && node bench/train-step.mjs [--tokens 512] [--threads 2] [--reps 3] [--dir D]
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
}
const nTargets = train.targets.length;
train.free();
model.free();

try {
  execFileSync(PY, ['-c', 'import torch'], { stdio: 'ignore' });
} catch {
  console.log('installing python3-torch (apt)…');
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'python3-torch'], { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}
const py = spawnSync(PY, [path.join(repo, 'bench/train_step_torch.py'), hf, String(T), String(rank), String(threads), String(reps)], { encoding: 'utf8' });
const line = py.stdout.split('\n').find((l) => l.startsWith('{'));
if (!line) throw new Error(`PyTorch script failed: ${py.stderr}`);
const torch = JSON.parse(line);

const tq = median(qtk), tt = median(torch.times);
const fmt = (a) => a.map((x) => x.toFixed(2)).join(' / ');
const block = [
  '',
  '## LoRA training step vs PyTorch (`bench/train-step.mjs`)',
  '',
  `${new Date().toISOString().slice(0, 10)} · qwen3_5 checkpoint hidden 1024, 8 layers (6 Gated DeltaNet 4×8 heads of 128, 2 gated attention 8×128 / 2 KV), ff 3072, vocab ${151936}, f32 weights · ${T} tokens, LoRA rank 16 alpha 32 on all ${nTargets} targets · CPU (${os.cpus()[0]?.model ?? 'cpu'}, ${threads} threads, 1-min load ${os.loadavg()[0].toFixed(1)}) · \`node bench/train-step.mjs --tokens ${T} --threads ${threads} --reps ${reps}\``,
  '',
  '| implementation | step seconds (each run) | median | tokens/s (median) | loss (Σ nats) |',
  '| --- | --- | --- | --- | --- |',
  `| qtk engine (ggml, chunked DeltaNet, layer-wise recompute) | ${fmt(qtk)} | ${tq.toFixed(2)} | ${(T / tq).toFixed(1)} | ${loss.toFixed(2)} |`,
  `| PyTorch ${torch.torch} CPU (HF math, torch chunked delta rule, autograd) | ${fmt(torch.times)} | ${tt.toFixed(2)} | ${(T / tt).toFixed(1)} | ${torch.loss.toFixed(2)} |`,
  '',
  `Ratio (qtk tokens/s ÷ PyTorch tokens/s): **${(tt / tq).toFixed(2)}**.`,
  '',
];
console.log(block.join('\n'));
appendFileSync(path.join(repo, 'bench/RESULTS.md'), block.join('\n'));
