#!/usr/bin/env node
// qtk convert vs cp: MB/s (checkpoint tensor bytes / wall time) and peak RSS converting a generated
// ≥ 2 GB bf16 qwen3_5 checkpoint, beside `cp` of the same shard files (the physical limit: one read, one
// write). Both run warm (the shards are in the page cache after generation), one after the other.
// Needs the packages built (`npm run build`, or tsc in core, fixtures, convert, cli) and GNU time.
// Usage: node bench/convert.mjs [--dir /tmp/qtk-bench-convert] [--layers 16] [--hidden 2048] [--keep]
// Appends one block to bench/RESULTS.md.
import { runStats } from './stats.mjs';
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, readdirSync, readFileSync, rmSync, statSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: path.join(os.tmpdir(), 'qtk-bench-convert') },
    layers: { type: 'string', default: '16' },
    hidden: { type: 'string', default: '2048' },
    keep: { type: 'boolean', default: false },
  },
});
const FIXTURE = path.join(repo, 'packages/fixtures/dist/cli.js');
const QTK = path.join(repo, 'packages/cli/dist/main.js');
for (const f of [FIXTURE, QTK]) if (!existsSync(f)) throw new Error(`${f} is missing: build the packages first (npm run build)`);

const hf = path.join(args.dir, 'Qwen3.5-Bench');
mkdirSync(args.dir, { recursive: true });
const shards = () => readdirSync(hf).filter((f) => f.endsWith('.safetensors'));
if (!existsSync(hf) || shards().length === 0) {
  // Real Qwen3.5 proportions scaled down: hybrid 3:1 layers, GDN 8 key / 24 value heads of 128, 16 q / 4 kv heads
  // of 128, full 151936 vocab, untied head, one MTP block, a few vision tensors.
  const gen = ['--arch', 'qwen3_5', '--out', hf, '--layers', args.layers, '--hidden', args.hidden, '--heads', '16', '--kv-heads', '4',
    '--head-dim', '128', '--linear-key-heads', '8', '--linear-value-heads', '24', '--linear-key-head-dim', '128',
    '--linear-value-head-dim', '128', '--shards', '4'];
  console.log(`generating: node ${FIXTURE} ${gen.join(' ')}`);
  execFileSync('node', [FIXTURE, ...gen], { stdio: 'inherit' });
}
const tensorBytes = shards().reduce((a, f) => a + statSync(path.join(hf, f)).size, 0);
if (tensorBytes < 2e9) throw new Error(`the checkpoint is ${(tensorBytes / 1e9).toFixed(2)} GB; pass more --layers or --hidden for ≥ 2 GB`);

/** Runs a command under GNU time, twice (a shared machine is noisy): the faster wall time, the larger peak RSS in MB. */
function timed(cmd, argv, cleanup = () => {}) {
  let best;
  const secsAll = [];
  for (let i = 0; i < 2; i++) {
    cleanup();
    execFileSync('sync');
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M', cmd, ...argv], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
    const [secs, kb] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    secsAll.push(secs);
    best = best === undefined ? { seconds: secs, rssMB: kb / 1024 } : { seconds: Math.min(best.seconds, secs), rssMB: Math.max(best.rssMB, kb / 1024) };
  }
  const st = runStats(secsAll);
  return { ...best, median: st.median, min: st.min, max: st.max };
}

const loadAtStart = os.loadavg()[0];
const runs = [];
for (const outtype of ['bf16', 'f16', 'q8_0']) {
  const out = path.join(args.dir, `bench-${outtype}.gguf`);
  const r = timed('node', [QTK, 'convert', hf, '-o', out, '--outtype', outtype], () => rmSync(out, { force: true }));
  runs.push({ what: `qtk convert --outtype ${outtype}`, ...r, outBytes: statSync(out).size });
  rmSync(out, { force: true });
}
const cpDir = path.join(args.dir, 'cp-copy');
const cp = timed('cp', [...shards().map((f) => path.join(hf, f)), cpDir], () => { rmSync(cpDir, { recursive: true, force: true }); mkdirSync(cpDir); });
runs.push({ what: `cp of the ${shards().length} shards`, ...cp, outBytes: tensorBytes });
rmSync(cpDir, { recursive: true, force: true });
// cp may copy inside the kernel (copy_file_range); cat moves the bytes through user space as qtk must.
const catOut = path.join(args.dir, 'cat-copy');
const cat = timed('sh', ['-c', `cat ${shards().map((f) => `'${path.join(hf, f)}'`).join(' ')} > '${catOut}'`], () => rmSync(catOut, { force: true }));
runs.push({ what: 'cat of the shards into one file', ...cat, outBytes: tensorBytes });
rmSync(catOut, { force: true });

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, ${os.platform()}, 1-min load average ${loadAtStart.toFixed(1)} at start (a shared machine)`;
const lines = [
  '',
  `## convert — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`,
  '',
  `Command: \`node bench/convert.mjs --layers ${args.layers} --hidden ${args.hidden}\` on ${machine}.`,
  `Input: generated bf16 qwen3_5 checkpoint, ${(tensorBytes / 1e9).toFixed(2)} GB in ${shards().length} shards (warm page cache for every row).`,
  '',
  'Each row: best wall time of 2 runs (the larger peak RSS of the two), `sync` before each.',
  '',
  '| run | wall s (best) | median s (min–max) | MB/s (input bytes / best wall) | peak RSS MB | output GB |',
  '| --- | ---: | ---: | ---: | ---: | ---: |',
  ...runs.map((r) => `| ${r.what} | ${r.seconds.toFixed(1)} | ${r.median.toFixed(1)} (${r.min.toFixed(1)}–${r.max.toFixed(1)}) | ${(tensorBytes / 1e6 / r.seconds).toFixed(0)} | ${r.rssMB.toFixed(0)} | ${(r.outBytes / 1e9).toFixed(2)} |`),
];
console.log(lines.join('\n'));
appendFileSync(path.join(repo, 'bench/RESULTS.md'), lines.join('\n') + '\n');
if (!args.keep) rmSync(args.dir, { recursive: true, force: true });
