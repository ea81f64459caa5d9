#!/usr/bin/env node
// Peak RSS of one LoRA training step (rank 16, every target) against the training memory formula
// (@qtk/core trainingMemory), at several qwen3_5 fixture sizes. Each size runs in its own process
// (node --expose-gc): the baseline is the RSS once ggml is loaded; the peak (VmHWM, reset after the
// model is loaded so load-time read buffers do not count) covers the resident base weights plus the step.
// Each size runs --runs times in fresh processes (RSS varies with allocator and GC state): median, min, max.
// Usage: npm run build && node bench/train-memory.mjs [--sizes 64x64,64x256,256x256] [--runs 3] [--dir D]
// Prints a table and appends it to bench/RESULTS.md.
import { spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    child: { type: 'string' },
    sizes: { type: 'string', default: '64x64,64x256,256x64,256x256' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'qtk-bench-train-memory') },
    layers: { type: 'string', default: '4' },
    runs: { type: 'string', default: '3' },
  },
});
const rss = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  return { rss: Number(/VmRSS:\s+(\d+)/.exec(s)[1]) * 1024, hwm: Number(/VmHWM:\s+(\d+)/.exec(s)[1]) * 1024 };
};

if (args.child) {
  const [gguf, T] = args.child.split(':');
  const { Backend, LoraTrainModel, Model, hparamsFromGguf } = await import('@qtk/engine').then(async (e) => ({ ...e, ...(await import('@qtk/core')) }));
  const backend = Backend.create({ device: 'cpu', threads: 1 });
  globalThis.gc();
  const base = rss().rss;
  const model = await Model.load(gguf, { backend, repack: false });
  const t = await LoraTrainModel.create(model, { rank: 16, alpha: 32, seed: 1 }, { seqLen: Number(T) });
  globalThis.gc();
  writeFileSync('/proc/self/clear_refs', '5'); // VmHWM := VmRSS
  const n = Number(T);
  const tokens = Int32Array.from({ length: n }, (_, i) => (i * 7919) % 150000);
  t.lossAndGradients({ tokens, lossMask: new Uint8Array(n).fill(1) });
  const peak = rss().hwm - base;
  const p = model.params;
  console.log(JSON.stringify({ T: n, hidden: p.nEmbd, layers: p.nLayer, ff: p.nFf, nHead: p.nHead, headDim: p.headDim, vocab: p.nVocab, ssmHeads: p.ssmHeads, ssmState: p.ssmState, ssmGroups: p.ssmGroups,
    baseBytes: model.weights.bytes, loraParams: t.params().reduce((a, q) => a + q.a.length + q.b.length, 0), graph: t.graphBytes, peak }));
  process.exit(0);
}

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { generateFixture } = await import('@qtk/fixtures');
const { convertCheckpoint } = await import('@qtk/convert');
const { trainingMemory } = await import('@qtk/core');
const rows = [];
for (const size of args.sizes.split(',')) {
  const [hidden, T] = size.split('x').map(Number);
  const root = path.join(args.dir, `h${hidden}-l${args.layers}`);
  const gguf = path.join(root, 'model-f32.gguf');
  if (!existsSync(gguf)) {
    await generateFixture({ arch: 'qwen3_5', outDir: path.join(root, 'hf'), hidden, layers: Number(args.layers), seed: 5, overwrite: true });
    await convertCheckpoint({ input: path.join(root, 'hf'), output: gguf, outtype: 'f32', log: () => {} });
  }
  const peaks = [];
  let m;
  for (let i = 0; i < Number(args.runs); i++) {
    const r = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), '--child', `${gguf}:${T}`], { encoding: 'utf8', cwd: repo });
    const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
    if (!line) throw new Error(`child failed: ${r.stderr}`);
    m = JSON.parse(line);
    peaks.push(m.peak);
  }
  peaks.sort((a, b) => a - b);
  m.peak = peaks[(peaks.length - 1) >> 1];
  m.peakMin = peaks[0];
  m.peakMax = peaks.at(-1);
  const f = trainingMemory({
    baseWeightBytes: m.baseBytes, loraParams: m.loraParams, nLayers: m.layers, hidden: m.hidden, tokens: m.T, vocab: m.vocab,
    layer: { ff: m.ff, qDim: m.nHead * m.headDim, nHead: m.nHead, gdnHeads: m.ssmHeads, gdnHeadDim: m.ssmState, gdnConv: 2 * m.ssmGroups * m.ssmState + m.ssmHeads * m.ssmState },
  });
  rows.push({ ...m, formula: f });
  console.log(`hidden ${m.hidden}, T ${m.T}: peak ${(m.peak / 2 ** 20).toFixed(1)} MiB, formula ${(f.total / 2 ** 20).toFixed(1)} MiB (${(100 * (m.peak / f.total - 1)).toFixed(1)} %)`);
}
const MiB = (b) => (b / 2 ** 20).toFixed(1);
const block = [
  '',
  '## LoRA training step memory (`bench/train-memory.mjs`)',
  '',
  `${new Date().toISOString().slice(0, 10)} · qwen3_5 fixtures (${args.layers} layers, real vocab ${rows[0]?.vocab}), f32 base, LoRA rank 16 on every target, one step, CPU 1 thread, ${args.runs} runs per size · \`node bench/train-memory.mjs --sizes ${args.sizes} --runs ${args.runs}\``,
  'Peak = VmHWM − RSS after ggml is loaded (HWM reset after the model load). Formula = `trainingMemory` of `packages/core/src/memory/training.ts`.',
  '',
  '| hidden | tokens | base weights | layer graph (measured / formula) | loss chunk graph | peak RSS, median (min–max) | formula | peak / formula, median (min–max) |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.hidden} | ${r.T} | ${MiB(r.baseBytes)} MiB | ${MiB(r.graph.layer)} / ${MiB(r.formula.layerWorkingSet)} MiB | ${MiB(r.graph.head)} MiB | ${MiB(r.peak)} (${MiB(r.peakMin)}–${MiB(r.peakMax)}) MiB | ${MiB(r.formula.total)} MiB | ${(r.peak / r.formula.total).toFixed(3)} (${(r.peakMin / r.formula.total).toFixed(3)}–${(r.peakMax / r.formula.total).toFixed(3)}) |`),
  '',
];
appendFileSync(path.join(repo, 'bench/RESULTS.md'), block.join('\n'));
