#!/usr/bin/env node
// qtk lora merge vs cp: MB/s (base GGUF bytes / wall time) and peak RSS merging a seeded PEFT adapter
// (every target, rank 8) into a generated ~1 GB F16 qwen3_5 GGUF, beside `cp` of the same base file in
// the same run (the physical limit: one read, one write; with and without the fsync qtk's atomic write
// does). Warm page cache for every row.
// Needs the packages built (`npm run build`) and GNU time.
// Usage: node bench/merge.mjs [--dir /tmp/qtk-bench-merge] [--layers 8] [--hidden 1024] [--keep]
// Appends one block to bench/RESULTS.md.
import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: path.join(os.tmpdir(), 'qtk-bench-merge') },
    layers: { type: 'string', default: '8' },
    hidden: { type: 'string', default: '1024' },
    keep: { type: 'boolean', default: false },
  },
});
const FIXTURE = path.join(repo, 'packages/fixtures/dist/cli.js');
const QTK = path.join(repo, 'packages/cli/dist/main.js');
for (const f of [FIXTURE, QTK]) if (!existsSync(f)) throw new Error(`${f} is missing: build the packages first (npm run build)`);

mkdirSync(args.dir, { recursive: true });
const hf = path.join(args.dir, 'hf');
const base = path.join(args.dir, 'base-f16.gguf');
const peft = path.join(args.dir, 'peft');
const adapter = path.join(args.dir, 'adapter.gguf');
if (!existsSync(base)) {
  const gen = ['--arch', 'qwen3_5', '--out', hf, '--layers', args.layers, '--hidden', args.hidden, '--heads', '8', '--kv-heads', '2',
    '--head-dim', '128', '--linear-key-heads', '8', '--linear-value-heads', '24', '--linear-key-head-dim', '128', '--linear-value-head-dim', '128'];
  console.log(`generating: node ${FIXTURE} ${gen.join(' ')}`);
  execFileSync('node', [FIXTURE, ...gen], { stdio: 'inherit' });
  execFileSync('node', [QTK, 'convert', hf, '-o', base, '--outtype', 'f16'], { stdio: 'inherit' });
}
if (!existsSync(adapter)) {
  const { generatePeftAdapter } = await import(path.join(repo, 'packages/fixtures/dist/index.js'));
  await generatePeftAdapter({ baseDir: hf, outDir: peft, overwrite: true });
  execFileSync('node', [QTK, 'lora', 'convert', peft, '--base', hf, '-o', adapter, '--force'], { stdio: 'inherit' });
}
const baseBytes = statSync(base).size;

/** Runs a command under GNU time, 3 times: median and min/max wall time, median CPU (user + system) seconds, the largest peak RSS in MB. */
function timed(cmd, argv, cleanup = () => {}) {
  const secs = [];
  const cpus = [];
  let rss = 0;
  for (let i = 0; i < 3; i++) {
    cleanup();
    execFileSync('sync');
    const r = spawnSync('/usr/bin/time', ['-f', '%e %M %U %S', cmd, ...argv], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
    if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed:\n${r.stderr}`);
    const [s, kb, user, sys] = r.stderr.trim().split('\n').pop().split(' ').map(Number);
    secs.push(s);
    cpus.push(user + sys);
    rss = Math.max(rss, kb / 1024);
  }
  secs.sort((a, b) => a - b);
  cpus.sort((a, b) => a - b);
  return { median: secs[1], min: secs[0], max: secs[2], cpu: cpus[1], rssMB: rss };
}

const loadAtStart = os.loadavg()[0];
const out = path.join(args.dir, 'merged.gguf');
const runs = [
  { what: 'qtk lora merge (F16 base, GGUF adapter)', ...timed('node', [QTK, 'lora', 'merge', base, adapter, '-o', out], () => rmSync(out, { force: true })) },
  { what: 'qtk lora merge (F16 base, PEFT adapter)', ...timed('node', [QTK, 'lora', 'merge', base, peft, '-o', out], () => rmSync(out, { force: true })) },
  { what: 'cp of the base GGUF', ...timed('cp', [base, out], () => rmSync(out, { force: true })) },
  // qtk fsyncs its output before the rename (atomic write); cp does not, so also cp then fsync of the copy.
  { what: 'cp of the base GGUF, then sync of the copy', ...timed('sh', ['-c', `cp '${base}' '${out}' && sync '${out}'`], () => rmSync(out, { force: true })) },
];
rmSync(out, { force: true });

const cpu = readFileSync('/proc/cpuinfo', 'utf8').match(/model name\s*:\s*(.*)/)?.[1] ?? os.cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpu}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, 1-min load average ${loadAtStart.toFixed(1)} at start (a shared machine)`;
const lines = [
  '',
  `## lora merge — ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC (\`bench/merge.mjs\`)`,
  '',
  `Command: \`node bench/merge.mjs --layers ${args.layers} --hidden ${args.hidden}\` on ${machine}.`,
  `Input: generated qwen3_5 F16 GGUF of ${(baseBytes / 1e9).toFixed(2)} GB; seeded PEFT adapter on every target (rank 8, 4 on in_proj_a/b). Warm page cache.`,
  '',
  'Each row: 3 runs, `sync` before each; MB/s from the median; peak RSS the largest of the 3.',
  '',
  '| run | median wall s (min–max) | MB/s (base bytes / median wall) | median CPU s (user + sys) | peak RSS MB |',
  '| --- | ---: | ---: | ---: | ---: |',
  ...runs.map((r) => `| ${r.what} | ${r.median.toFixed(2)} (${r.min.toFixed(2)}–${r.max.toFixed(2)}) | ${(baseBytes / 1e6 / r.median).toFixed(0)} | ${r.cpu.toFixed(2)} | ${r.rssMB.toFixed(0)} |`),
];
console.log(lines.join('\n'));
appendFileSync(path.join(repo, 'bench/RESULTS.md'), lines.join('\n') + '\n');
if (!args.keep) rmSync(args.dir, { recursive: true, force: true });
