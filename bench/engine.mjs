#!/usr/bin/env node
// Prompt processing (tokens/s) of the qtk engine against llama.cpp (node-llama-cpp 3.21.1) on the same
// GGUF, same thread count: a qwen3_5 fixture big enough that compute dominates (hidden 1024, 8 layers),
// as f16 (qtk convert) and Q4_K (2-D weights quantized by ggml's own quantizer). One warm-up pass, then
// the best of --runs timed passes of --tokens tokens from an empty state; only the last token's logits
// are taken on both sides (as llama-bench pp). Needs `npm run build` (packages' dist).
// Usage: node bench/engine.mjs [--threads N] [--tokens 512] [--runs 2] [--arch qwen3_5|qwen3] [--keep DIR]
import { formatStats, runStats } from './stats.mjs';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { GgufReader, GgufWriter, GGML_TYPES } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { Model, ggmlQuantize, loadGgml } from '@qtk/engine';
import { getLlama } from 'node-llama-cpp';

const { values: args } = parseArgs({
  options: {
    threads: { type: 'string', default: String(Math.min(8, os.availableParallelism())) },
    tokens: { type: 'string', default: '512' },
    runs: { type: 'string', default: '2' },
    arch: { type: 'string', default: 'qwen3_5' },
    keep: { type: 'string' },
  },
});
const threads = Number(args.threads), nTok = Number(args.tokens), runs = Number(args.runs);
const dir = args.keep ?? mkdtempSync(path.join(os.tmpdir(), 'qtk-bench-engine-'));

async function requantize(src, dst, type) {
  const lib = loadGgml('cpu');
  const r = await GgufReader.open(src);
  const w = await GgufWriter.create(dst, { overwrite: true });
  for (const kv of r.kv.values()) if (kv.key !== 'general.alignment') w.addKV(kv);
  const plan = r.tensors.map((t) => ({ t, q: t.type === 'F32' && t.ne.length === 2 && !t.name.includes('ssm_conv1d') && t.ne[0] % GGML_TYPES[type].blockSize === 0 }));
  for (const { t, q } of plan) w.addTensorInfo(t.name, [...t.ne], q ? type : t.type);
  for (const { t, q } of plan) {
    const b = await r.readTensor(t);
    await w.writeTensorData(t.name, q ? ggmlQuantize(lib, type, new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), t.ne[0]) : b);
  }
  await w.finish();
  await r.close();
}

const tokens = Array.from({ length: nTok }, (_, i) => (i * 7919 + 13) % 150000);
const time = async (fn) => { const t0 = performance.now(); await fn(); return (performance.now() - t0) / 1000; };

async function engineRate(gguf) {
  const m = await Model.load(gguf, { device: 'cpu', threads });
  const s = m.session({ nCtx: nTok, nBatch: nTok });
  const once = () => { s.reset(); s.eval(tokens, { logits: 'last' }); };
  once();
  const secs = [];
  for (let i = 0; i < runs; i++) secs.push(await time(once));
  s.free(); m.free();
  console.log(`qtk engine ${path.basename(gguf)}: ${formatStats(secs)}`);
  return nTok / runStats(secs).best;
}

const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' });
async function llamaRate(gguf) {
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0 });
  const ctx = await model.createContext({ contextSize: nTok + 16, batchSize: nTok, threads, sequences: 1 });
  const seq = ctx.getSequence();
  const once = async () => { await seq.clearHistory(); await seq.evaluateWithoutGeneratingNewTokens(tokens); };
  await once();
  const secs = [];
  for (let i = 0; i < runs; i++) secs.push(await time(once));
  await ctx.dispose(); await model.dispose();
  console.log(`llama.cpp ${path.basename(gguf)}: ${formatStats(secs)}`);
  return nTok / runStats(secs).best;
}

try {
  const hf = path.join(dir, 'hf');
  await generateFixture({ arch: args.arch, outDir: hf, hidden: 1024, layers: 8, overwrite: true });
  const f16 = path.join(dir, 'bench-F16.gguf'), f32 = path.join(dir, 'bench-F32.gguf'), q4k = path.join(dir, 'bench-Q4_K.gguf');
  await convertCheckpoint({ input: hf, output: f16, outtype: 'f16', force: true, log: () => {} });
  await convertCheckpoint({ input: hf, output: f32, outtype: 'f32', force: true, log: () => {} });
  await requantize(f32, q4k, 'Q4_K');
  rmSync(f32);
  const rows = [];
  for (const [name, gguf] of [['F16', f16], ['Q4_K', q4k]]) {
    // alternate the order so neither side always runs on a warmer machine
    const l1 = await llamaRate(gguf);
    const e = await engineRate(gguf);
    const l2 = await llamaRate(gguf);
    const l = Math.max(l1, l2);
    rows.push(`| ${args.arch} h1024 L8 ${name} | ${nTok} | ${threads} | ${e.toFixed(1)} | ${l.toFixed(1)} | ${(e / l).toFixed(2)} |`);
    console.error(rows.at(-1));
  }
  console.log(`\n### engine prompt processing (${new Date().toISOString().slice(0, 10)}, ${os.cpus()[0]?.model ?? 'cpu'}, load avg ${os.loadavg()[0].toFixed(1)})\n`);
  console.log('| model | tokens | threads | qtk engine tok/s | llama.cpp tok/s | ratio |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(r);
} finally {
  if (!args.keep) rmSync(dir, { recursive: true, force: true });
}
