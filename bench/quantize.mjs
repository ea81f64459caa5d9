#!/usr/bin/env node
// qtk quantize vs llama-quantize: MB/s (input bytes / wall time) for Q8_0, Q4_K_M and IQ4_XS on one
// ≥ 1 GB f16 GGUF, same input, same thread count, run one after the other; plus a check that both wrote
// the same tensor types and bytes. Needs `npm run build`. qtk runs as users run it: the `qtk quantize` CLI in a
// child process (its UV_THREADPOOL_SIZE sizing and start-up included). The anchor is the llama-quantize binary when one
// is built (LLAMA_QUANTIZE=path, default /work/ref/build/bin/llama-quantize); otherwise llama_model_quantize
// — the function that binary wraps — from node-llama-cpp's prebuilt libllama (same llama.cpp source),
// called in a child process through @qtk/quantize's koffi binding.
// Usage: node bench/quantize.mjs [--threads N] [--presets Q8_0,Q4_K_M,IQ4_XS] [--repeat N] [--dir /tmp/qtk-bench] [--keep]
// With --repeat N the two sides alternate (qtk first on odd runs, llama.cpp first on even ones) and the
// fastest run of each counts: the host is shared, so single runs are noisy.
import { formatStats, runStats } from './stats.mjs';
import { spawnSync } from 'node:child_process';
import { existsSync, statSync, rmSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GgufReader, GgufWriter } from '@qtk/core';
import { PRESETS } from '@qtk/quantize';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: String(os.availableParallelism()) },
    presets: { type: 'string', default: 'Q8_0,Q4_K_M,IQ4_XS' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'qtk-bench-quantize') },
    keep: { type: 'boolean', default: false },
    repeat: { type: 'string', default: '1' },
  },
});
const threads = Number(args.threads);
const LLAMA_QUANTIZE = process.env.LLAMA_QUANTIZE ?? '/work/ref/build/bin/llama-quantize';
const QTK_CLI = new URL('../packages/cli/dist/main.js', import.meta.url).pathname;
if (!existsSync(QTK_CLI)) throw new Error(`${QTK_CLI} is missing: run npm run build first`);
mkdirSync(args.dir, { recursive: true });
const input = path.join(args.dir, 'bench-F16.gguf');

// A qwen3-shaped model: 10 layers, hidden 2048, ffn 6144, 16 q / 4 kv heads of 128, vocab 32768, untied
// → 616 M weights, 1.23 GB in f16. Values are Gaussian (σ 0.02) from a seeded generator, reused in 16 MB tiles.
const D = { layers: 10, hidden: 2048, ffn: 6144, heads: 16, kvHeads: 4, headDim: 128, vocab: 32768 };
function layout() {
  const { hidden: H, ffn: F, heads, kvHeads, headDim: hd, vocab: V } = D;
  const t = [
    { name: 'token_embd.weight', ne: [H, V], type: 'F16' },
    { name: 'output_norm.weight', ne: [H], type: 'F32' },
    { name: 'output.weight', ne: [H, V], type: 'F16' },
  ];
  for (let i = 0; i < D.layers; i++) {
    const b = `blk.${i}`;
    t.push(
      { name: `${b}.attn_norm.weight`, ne: [H], type: 'F32' },
      { name: `${b}.attn_q.weight`, ne: [H, heads * hd], type: 'F16' },
      { name: `${b}.attn_k.weight`, ne: [H, kvHeads * hd], type: 'F16' },
      { name: `${b}.attn_v.weight`, ne: [H, kvHeads * hd], type: 'F16' },
      { name: `${b}.attn_output.weight`, ne: [heads * hd, H], type: 'F16' },
      { name: `${b}.attn_q_norm.weight`, ne: [hd], type: 'F32' },
      { name: `${b}.attn_k_norm.weight`, ne: [hd], type: 'F32' },
      { name: `${b}.ffn_norm.weight`, ne: [H], type: 'F32' },
      { name: `${b}.ffn_gate.weight`, ne: [H, F], type: 'F16' },
      { name: `${b}.ffn_up.weight`, ne: [H, F], type: 'F16' },
      { name: `${b}.ffn_down.weight`, ne: [F, H], type: 'F16' },
    );
  }
  return t;
}

function f16Tile(n, seed) {
  const out = new Uint16Array(n);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  let s = seed >>> 0;
  const rnd = () => { s = (Math.imul(s, 1664525) + 1013904223) >>> 0; return (s + 0.5) / 4294967296; };
  for (let i = 0; i < n; i++) {
    f[0] = 0.02 * Math.sqrt(-2 * Math.log(rnd())) * Math.cos(2 * Math.PI * rnd());
    const x = u[0], sign = (x >>> 16) & 0x8000, e = ((x >>> 23) & 0xff) - 112, m = x & 0x7fffff;
    out[i] = e <= 0 ? sign : sign | (e << 10) | ((m + 0x1000) >>> 13); // values are small: no overflow
  }
  return new Uint8Array(out.buffer);
}

async function writeInput() {
  if (existsSync(input)) return;
  const w = await GgufWriter.create(input, { overwrite: true });
  w.add('general.architecture', 'STRING', 'qwen3');
  w.add('general.name', 'STRING', 'qtk quantize bench');
  w.add('general.file_type', 'UINT32', 1);
  const kv = {
    block_count: D.layers, context_length: 4096, embedding_length: D.hidden, feed_forward_length: D.ffn,
    'attention.head_count': D.heads, 'attention.head_count_kv': D.kvHeads, 'attention.key_length': D.headDim, 'attention.value_length': D.headDim,
  };
  for (const [k, v] of Object.entries(kv)) w.add(`qwen3.${k}`, 'UINT32', v);
  w.add('qwen3.attention.layer_norm_rms_epsilon', 'FLOAT32', 1e-6);
  w.add('qwen3.rope.freq_base', 'FLOAT32', 1e6);
  const tensors = layout();
  for (const t of tensors) w.addTensorInfo(t.name, t.ne, t.type);
  const tile = f16Tile(8 << 20, 1);
  const ones = new Uint8Array(new Float32Array(1 << 16).fill(1).buffer);
  for (const [i, t] of tensors.entries()) {
    const n = t.ne.reduce((a, b) => a * b, 1);
    if (t.type === 'F32') { await w.writeTensorData(t.name, ones.subarray(0, n * 4)); continue; }
    let left = n * 2, off = (i * 4099 * 2) % tile.length;
    while (left > 0) {
      const k = Math.min(left, tile.length - off);
      await w.writeTensorData(t.name, tile.subarray(off, off + k));
      left -= k; off = 0;
    }
  }
  await w.finish();
}

async function tensorMap(file) {
  const r = await GgufReader.open(file);
  return { r, byName: new Map(r.tensors.map((t) => [t.name, t])) };
}

/** Same tensor set, types and data bytes (metadata may differ in key order). */
async function sameTensors(a, b) {
  const A = await tensorMap(a), B = await tensorMap(b);
  try {
    if (A.byName.size !== B.byName.size) return `tensor counts differ (${A.byName.size} vs ${B.byName.size})`;
    for (const [name, ta] of A.byName) {
      const tb = B.byName.get(name);
      if (!tb) return `${name} missing`;
      if (ta.type !== tb.type) return `${name}: ${ta.type} vs ${tb.type}`;
      const step = 64 << 20;
      for (let off = 0; off < ta.byteLength; off += step) {
        const n = Math.min(step, ta.byteLength - off);
        const x = await A.r.readTensorRange(ta, off, n), y = await B.r.readTensorRange(tb, off, n);
        if (Buffer.compare(Buffer.from(x), Buffer.from(y)) !== 0) return `${name}: data differs near byte ${off}`;
      }
    }
    return 'identical';
  } finally {
    await A.r.close(); await B.r.close();
  }
}

await writeInput();
const inBytes = statSync(input).size;
console.log(`input ${input}: ${(inBytes / 1e9).toFixed(2)} GB, ${threads} threads, ${os.cpus()[0]?.model ?? 'cpu'} × ${os.cpus().length}`);
const useBinary = existsSync(LLAMA_QUANTIZE);
console.log(`anchor: ${useBinary ? LLAMA_QUANTIZE : 'llama_model_quantize from node-llama-cpp\'s prebuilt libllama (child process)'}`);

function runLlama(preset, out) {
  if (useBinary) return spawnSync(LLAMA_QUANTIZE, [input, out, preset, String(threads)], { encoding: 'utf8' });
  const code = `import('@qtk/quantize').then((m) => { process.exitCode = m.llamaModelQuantize(${JSON.stringify({ input, output: out, ftype: PRESETS[preset].ftype, threads })}); })`;
  return spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', cwd: path.dirname(new URL(import.meta.url).pathname) });
}
const rows = [];
for (const preset of args.presets.split(',')) {
  const outQ = path.join(args.dir, `qtk-${preset}.gguf`), outL = path.join(args.dir, `llama-${preset}.gguf`);
  let qtkS = Infinity, llamaS = Infinity;
  const qtkRuns = [], llamaRuns = [];
  const runQtk = async () => {
    // qtk's writer fsyncs before its rename, so its time already covers getting the output to disk. Each side
    // starts without the previous run's output: freeing that file's blocks is not quantizing (and cost
    // either side 0.5–1 s of kernel time at random when left in place).
    rmSync(outQ, { force: true });
    spawnSync('sync');
    const t0 = performance.now();
    const r = spawnSync(process.execPath, [QTK_CLI, 'quantize', input, outQ, '--type', preset, '--threads', String(threads), '--force'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`qtk quantize failed:\n${(r.stderr ?? '').slice(-2000)}`);
    qtkRuns.push((performance.now() - t0) / 1000);
    qtkS = Math.min(qtkS, qtkRuns.at(-1));
  };
  const runRef = () => {
    // qtk's writer fsyncs before its rename; llama.cpp only closes the stream. `sync` after llama.cpp puts
    // both outputs on disk, so both timings cover the same work.
    rmSync(outL, { force: true });
    spawnSync('sync');
    const t0 = performance.now();
    const r = runLlama(preset, outL);
    spawnSync('sync');
    if (r.status !== 0) throw new Error(`llama.cpp quantize failed:\n${(r.stderr ?? '').slice(-2000)}`);
    llamaRuns.push((performance.now() - t0) / 1000);
    llamaS = Math.min(llamaS, llamaRuns.at(-1));
  };
  for (let rep = 0; rep < Number(args.repeat); rep++) {
    if (rep % 2 === 0) { await runQtk(); runRef(); } else { runRef(); await runQtk(); }
  }
  const same = await sameTensors(outQ, outL);
  const row = { preset, qtkS, llamaS, qtkMBs: inBytes / 1e6 / qtkS, llamaMBs: inBytes / 1e6 / llamaS, ratio: llamaS / qtkS, same, qtkRuns, llamaRuns };
  rows.push(row);
  console.log(`${preset.padEnd(7)} qtk ${formatStats(qtkRuns)}; llama.cpp ${formatStats(llamaRuns)}`);
  console.log(`${preset.padEnd(7)} qtk ${row.qtkMBs.toFixed(1)} MB/s (${qtkS.toFixed(1)} s)  llama.cpp ${row.llamaMBs.toFixed(1)} MB/s (${llamaS.toFixed(1)} s)  ratio ${row.ratio.toFixed(2)}×  tensors: ${same}`);
  if (!args.keep) { rmSync(outQ, { force: true }); rmSync(outL, { force: true }); }
}
console.log('\n| preset | qtk MB/s (best) | llama.cpp MB/s (best) | ratio (qtk / llama.cpp) | qtk s: median (min–max) | llama.cpp s: median (min–max) | output tensors |\n| --- | --- | --- | --- | --- | --- | --- |');
const med = (runs) => { const r = runStats(runs); return `${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)})`; };
for (const r of rows) console.log(`| ${r.preset} | ${r.qtkMBs.toFixed(1)} | ${r.llamaMBs.toFixed(1)} | ${r.ratio.toFixed(2)}× | ${med(r.qtkRuns)} | ${med(r.llamaRuns)} | ${r.same} |`);
