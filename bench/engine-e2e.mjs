#!/usr/bin/env node
// The whole commands users run, timed as processes side by side with llama.cpp's own tools on the same
// GGUF, text, windows and threads: `qtk eval ppl` vs `llama-perplexity`, `qtk eval kld` vs
// `llama-perplexity --kl-divergence-base` (base pass) + `--kl-divergence` (second pass), `qtk imatrix`
// vs `llama-imatrix`; wall and CPU time (median of --runs, with min and max; CPU seconds are steadier
// on a shared machine), peak RSS (GNU time), start-up to the first window for eval ppl (qtk: from the
// process's start, with its Model.load share; llama-perplexity: the timestamp of its "calculating"
// line, after load, warm-up and tokenizing), and the values both print. Fixtures: qwen3_5 f16 checkpoints converted by
// qtk (hidden 1024 × 8 layers ≈ 0.76 GB; hidden 2048 × 16 layers ≈ 2.2 GB) and their Q4_K_M by qtk quantize.
// Needs `npm run build` and llama.cpp's tools (bash bench/build-llama-anchors.sh prints their folder).
// Usage: node bench/engine-e2e.mjs --bin DIR [--threads 2] [--runs 3] [--chunks 6] [--ctx 512]
//        [--sizes small,big] [--fixtures DIR (kept; made there when missing)] [--only ppl,kld,imatrix]
//        [--ggml prebuilt|native|both: which ggml qtk runs on — node-llama-cpp's prebuilt libraries (what users
//        get), the libggml and libllama of --bin through GGML_BIN_DIR (the build llama.cpp's tools use, so that
//        only the code above ggml differs), or both, one row each against the same llama.cpp runs; --same-ggml
//        is --ggml native] [--lock FILE: every timed process waits for flock FILE, so a shared machine runs
//        one benchmark process at a time and a long bench does not hold the lock between processes]
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    bin: { type: 'string' },
    threads: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    chunks: { type: 'string', default: '6' },
    ctx: { type: 'string', default: '512' },
    sizes: { type: 'string', default: 'small,big' },
    fixtures: { type: 'string' },
    only: { type: 'string', default: 'ppl,kld,imatrix' },
    'same-ggml': { type: 'boolean', default: false },
    ggml: { type: 'string' },
    lock: { type: 'string' },
  },
});
if (!args.bin || !existsSync(path.join(args.bin, 'llama-perplexity'))) {
  console.error('pass --bin with the folder of llama-perplexity and llama-imatrix (bash bench/build-llama-anchors.sh prints it)');
  process.exit(2);
}
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const qtk = path.join(root, 'packages/cli/dist/main.js');
const T = args.threads, runs = Number(args.runs), chunks = args.chunks, ctx = args.ctx;
const only = new Set(args.only.split(','));
const ggmlArg = args.ggml ?? (args['same-ggml'] ? 'native' : 'prebuilt');
const GGMLS = { prebuilt: ['prebuilt'], native: ['native'], both: ['prebuilt', 'native'] }[ggmlArg];
if (!GGMLS) {
  console.error(`--ggml ${ggmlArg}: use prebuilt, native or both`);
  process.exit(2);
}
const fixDir = args.fixtures ?? mkdtempSync(path.join(os.tmpdir(), 'qtk-bench-e2e-'));
mkdirSync(fixDir, { recursive: true });
const SIZES = { small: { hidden: 1024, layers: 8 }, big: { hidden: 2048, layers: 16 } };

function makeFixtures(name) {
  const f16 = path.join(fixDir, `${name}-f16.gguf`), q4 = path.join(fixDir, `${name}-Q4_K_M.gguf`);
  if (!existsSync(f16)) {
    const hf = path.join(fixDir, `${name}-hf`);
    const { hidden, layers } = SIZES[name];
    execFileSync('node', [path.join(root, 'packages/fixtures/dist/cli.js'), '--arch', 'qwen3_5', '--out', hf, '--hidden', String(hidden), '--layers', String(layers)], { stdio: 'inherit' });
    execFileSync('node', [qtk, 'convert', hf, '-o', f16, '--outtype', 'f16'], { stdio: 'inherit' });
    rmSync(hf, { recursive: true, force: true });
  }
  if (!existsSync(q4)) execFileSync('node', [qtk, 'quantize', f16, q4, '--type', 'Q4_K_M'], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { f16, q4 };
}

// text: this repository's READMEs and engine sources, fixed per commit; enough tokens for --chunks windows
const text = path.join(fixDir, 'text.txt');
const srcDir = path.join(root, 'packages/engine/src');
const files = [path.join(root, 'README.md'), ...readdirSync(path.join(root, 'packages')).map((p) => path.join(root, 'packages', p, 'README.md')).filter(existsSync).sort()];
for (const d of readdirSync(srcDir).sort()) {
  const full = path.join(srcDir, d);
  if (!d.includes('.')) for (const f of readdirSync(full).sort()) if (f.endsWith('.ts')) files.push(path.join(full, f));
}
writeFileSync(text, files.map((f) => readFileSync(f, 'utf8')).join('\n'));

// native ggml: the engine looks for node-llama-cpp's names in GGML_BIN_DIR, the build has plain ones
const qtkEnvs = { prebuilt: { ...process.env } };
delete qtkEnvs.prebuilt.GGML_BIN_DIR;
if (GGMLS.includes('native')) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'qtk-bench-ggml-'));
  for (const [name, target] of [['libggml-base.so', 'libggml-base.so'], ['libggml.v0.4.0.so', 'libggml.so'], ['libggml-cpu.so', 'libggml-cpu.so'], ['libllama.v0.4.0.so', 'libllama.so']]) {
    symlinkSync(path.resolve(args.bin, target), path.join(dir, name));
  }
  qtkEnvs.native = { ...process.env, GGML_BIN_DIR: dir };
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
}

/** Runs a command under GNU time; returns wall seconds, CPU seconds, peak RSS MB, stdout + stderr. */
function timed(cmd, argv, env = process.env) {
  const time = ['/usr/bin/time', '-f', 'QTKTIME %e %M %U %S', cmd, ...argv];
  const [exe, ...rest] = args.lock ? ['flock', args.lock, ...time] : time;
  const r = spawnSync(exe, rest, { encoding: 'utf8', maxBuffer: 64 << 20, env });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = out.match(/QTKTIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)/);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${argv.join(' ')} failed (${r.status}):\n${out.slice(-3000)}`);
  return { secs: Number(m[1]), rssMb: Number(m[2]) / 1024, cpu: Number(m[3]) + Number(m[4]), out };
}
// start-up to the first window: llama-perplexity's timestamp (minutes.seconds.ms.us since its start) on
// the line it prints when the model is loaded, warmed up and the text tokenized
const llamaStartup = (out) => {
  const m = out.match(/^(\d+)\.(\d+)\.(\d+)\.\d+ I perplexity: calculating/m);
  return m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) / 1000 : NaN;
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => (xs.some(Number.isNaN) ? '—' : `${median(xs).toFixed(2)} (${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)})`);

const rows = [];
function row(name, ggml, q, l) {
  const qs = q.map((r) => r.secs), ls = l.map((r) => r.secs);
  const load = q[0].load !== undefined ? ` | ${fmt(q.map((r) => r.load))} (${fmt(q.map((r) => r.modelLoad))}) | ${fmt(l.map((r) => r.load))}` : ' | | ';
  const qc = q.map((r) => r.cpu), lc = l.map((r) => r.cpu);
  return `| ${name} | ${ggml} | ${fmt(qs)} | ${fmt(ls)} | ${(median(ls) / median(qs)).toFixed(2)} | ${fmt(qc)} | ${fmt(lc)} | ${(median(lc) / median(qc)).toFixed(2)} | ${Math.max(...q.map((r) => r.rssMb)).toFixed(0)} | ${Math.max(...l.map((r) => r.rssMb)).toFixed(0)}${load} | ${q[0].value} / ${l[0].value} |`;
}
const tmp = mkdtempSync(path.join(os.tmpdir(), 'qtk-bench-e2e-out-'));
const common = ['--data', text, '--ctx', ctx, '--chunks', chunks, '--threads', T, '--device', 'cpu'];
const lcommon = ['-f', text, '-c', ctx, '--chunks', chunks, '-t', T];
try {
  for (const size of args.sizes.split(',')) {
    const { f16, q4 } = makeFixtures(size);
    const gb = (statSync(f16).size / 1e9).toFixed(2);
    const cases = [];
    if (only.has('ppl')) cases.push({
      name: `eval ppl (f16 ${gb} GB)`,
      qtk: (env) => { const r = timed('node', [qtk, 'eval', 'ppl', f16, ...common, '--json'], env); const j = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))); return { ...r, value: `PPL ${j.ppl.toPrecision(8)}`, load: j.startupSeconds, modelLoad: j.loadSeconds }; },
      llama: () => { const r = timed(path.join(args.bin, 'llama-perplexity'), ['-m', f16, ...lcommon]); return { ...r, value: `PPL ${r.out.match(/Final estimate: PPL = ([\d.e+]+)/)?.[1]}`, load: llamaStartup(r.out) }; },
    });
    if (only.has('kld')) cases.push({
      name: `eval kld (f16 → Q4_K_M)`,
      qtk: (env) => { const r = timed('node', [qtk, 'eval', 'kld', f16, q4, ...common, '--json'], env); const j = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))); return { ...r, value: `KLD ${j.meanKld.toPrecision(6)}` }; },
      llama: () => {
        const base = path.join(tmp, 'base.kld');
        const a = timed(path.join(args.bin, 'llama-perplexity'), ['-m', f16, ...lcommon, '--kl-divergence-base', base]);
        const b = timed(path.join(args.bin, 'llama-perplexity'), ['-m', q4, ...lcommon, '--kl-divergence-base', base, '--kl-divergence']);
        rmSync(base, { force: true });
        return { secs: a.secs + b.secs, cpu: a.cpu + b.cpu, rssMb: Math.max(a.rssMb, b.rssMb), out: b.out, value: `KLD ${b.out.match(/Mean\s+KLD:\s+([\d.]+)/)?.[1]}` };
      },
    });
    if (only.has('imatrix')) cases.push({
      name: `imatrix (f16)`,
      qtk: (env) => { const o = path.join(tmp, 'q.imatrix.gguf'); const r = timed('node', [qtk, 'imatrix', f16, ...common, '-o', o, '--force', '--json'], env); const j = JSON.parse(r.out.split('\n').find((l) => l.startsWith('{'))); return { ...r, value: `${j.entries} matrices` }; },
      llama: () => { const o = path.join(tmp, 'l.imatrix.gguf'); const r = timed(path.join(args.bin, 'llama-imatrix'), ['-m', f16, ...lcommon, '-o', o]); return { ...r, value: 'written' }; },
    });
    for (const c of cases) {
      const q = Object.fromEntries(GGMLS.map((g) => [g, []])), l = [];
      // alternate so neither side always runs on a warmer machine
      for (let i = 0; i < runs; i++) {
        l.push(c.llama());
        for (const g of GGMLS) q[g].push(c.qtk(qtkEnvs[g]));
        const qs = GGMLS.map((g) => { const r = q[g].at(-1); return `qtk (${g} ggml) ${r.secs}s (${r.cpu.toFixed(1)} CPU-s) ${r.rssMb.toFixed(0)}MB ${r.value} start-up ${r.load?.toFixed(2) ?? '—'}s`; });
        const r = l.at(-1);
        console.error(`${size} ${c.name} run ${i + 1}: ${qs.join('; ')}; llama.cpp ${r.secs}s (${r.cpu.toFixed(1)} CPU-s) ${r.rssMb.toFixed(0)}MB ${r.value} start-up ${r.load?.toFixed(2) ?? '—'}s; load avg ${os.loadavg().map((x) => x.toFixed(1)).join(' ')}`);
      }
      for (const g of GGMLS) rows.push(row(`${size} ${c.name}`, g, q[g], l));
    }
  }
  console.log(`\n### engine end to end (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, load avg ${os.loadavg().map((x) => x.toFixed(1)).join(' ')})\n`);
  console.log(`Command: \`node bench/engine-e2e.mjs --threads ${T} --runs ${runs} --chunks ${chunks} --ctx ${ctx} --sizes ${args.sizes} --only ${args.only} --ggml ${ggmlArg}\`\n`);
  console.log('| command | qtk on ggml | qtk s, median (min–max) | llama.cpp s | llama.cpp / qtk | qtk CPU-s | llama.cpp CPU-s | CPU llama.cpp / qtk | qtk peak RSS MB | llama.cpp peak RSS MB | qtk start-up s (Model.load) | llama.cpp start-up s | values (qtk / llama.cpp) |');
  console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const r of rows) console.log(r);
} finally {
  rmSync(tmp, { recursive: true, force: true });
  if (!args.fixtures) rmSync(fixDir, { recursive: true, force: true });
}
