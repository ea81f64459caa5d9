// GPTQ quantization cost on CPU beside importance-matrix quantization of the same model, in the same run:
// wall time and peak RSS of the whole commands (GNU time), per billion parameters of the model.
//   imatrix route: `qtk imatrix` (calibration) + `qtk quantize --imatrix` (rounding)
//   GPTQ route:    `qtk quantize --method gptq` (true-sequential calibration + solve, one process), with the
//                  fast solver (default) and with `--gptq-solver reference` (the f64 TypeScript reference)
// Both see the same calibration tokens (the first --windows windows of 512 tokens of the same text).
// Fixture: the qwen3_5 generator's model, 256 wide (every matmul takes k-quants), 4 layers.
// Usage: npm run build && node bench/gptq.mjs [--runs 3] [--windows 8] [--type Q4_K_M] [--threads 2] [--structured]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatStats, runStats } from './stats.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const qtk = path.join(root, 'packages/cli/dist/main.js');
const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const runs = Number(arg('runs', 3)), windows = Number(arg('windows', 8)), type = arg('type', 'Q4_K_M'), T = arg('threads', '2');

function timed(argv) {
  const r = spawnSync('/usr/bin/time', ['-f', 'QTKTIME %e %M', process.execPath, qtk, ...argv], { encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, CI: 'true' } });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  const m = out.match(/QTKTIME ([\d.]+) (\d+)/);
  if (r.status !== 0 || !m) throw new Error(`qtk ${argv.join(' ')} failed (${r.status}):\n${out.slice(-3000)}`);
  return { secs: Number(m[1]), rssMb: Number(m[2]) / 1024 };
}

const w = mkdtempSync(path.join(tmpdir(), 'qtk-bench-gptq-'));
try {
  const hf = path.join(w, 'hf'), f16 = path.join(w, 'fx-F16.gguf');
  spawnSync(process.execPath, [path.join(root, 'packages/fixtures/dist/cli.js'), '--arch', 'qwen3_5', '--out', hf, '--layers', '4', '--hidden', '256', '--heads', '4', '--kv-heads', '2',
    '--head-dim', '64', '--linear-value-heads', '4', '--linear-value-head-dim', '64', '--linear-key-head-dim', '64', '--seed', '7', '--force', ...(process.argv.includes('--structured') ? ['--structured'] : [])], { stdio: 'ignore' });
  timed(['convert', hf, '-o', f16]);
  const calib = path.join(w, 'calib.txt');
  const src = ['core', 'engine', 'convert'].flatMap((p) => {
    const d = path.join(root, 'packages', p, 'src');
    return readdirSync(d, { recursive: true }).filter((f) => String(f).endsWith('.ts')).sort().map((f) => path.join(d, String(f)));
  });
  writeFileSync(calib, src.map((f) => readFileSync(f, 'utf8')).join('\n'));
  const info = JSON.parse(spawnSync(process.execPath, [qtk, 'inspect', f16, '--json'], { encoding: 'utf8', maxBuffer: 256 << 20 }).stdout);
  const params = info.totals.elements;
  const perB = (x) => x / (params / 1e9);
  const im = [], imq = [], g = [], gr = [];
  for (let r = 0; r < runs; r++) {
    im.push(timed(['imatrix', f16, '--data', calib, '--chunks', String(windows), '--ctx', '512', '--threads', T, '-o', path.join(w, 'imatrix.gguf'), '--force']));
    imq.push(timed(['quantize', f16, path.join(w, 'q-imatrix.gguf'), '--type', type, '--imatrix', path.join(w, 'imatrix.gguf'), '--threads', T, '--force']));
    const gptq = ['quantize', f16, path.join(w, 'q-gptq.gguf'), '--type', type, '--method', 'gptq', '--calib', calib, '--calib-tokens', String(512 * windows), '--threads', T, '--force'];
    g.push(timed(gptq));
    gr.push(timed([...gptq, '--gptq-solver', 'reference']));
  }
  const both = im.map((x, i) => ({ secs: x.secs + imq[i].secs, rssMb: Math.max(x.rssMb, imq[i].rssMb) }));
  const line = (name, xs) => {
    const s = runStats(xs.map((x) => x.secs));
    return `| ${name} | ${formatStats(xs.map((x) => x.secs))} | ${perB(s.median).toFixed(0)} s | ${Math.max(...xs.map((x) => x.rssMb)).toFixed(0)} MB |`;
  };
  console.log(`model: ${process.argv.includes('--structured') ? 'structured' : 'random'} fixture, ${(params / 1e6).toFixed(1)} M parameters, ${type}, ${512 * windows} calibration tokens, --threads ${T}, ${runs} runs`);
  console.log('| route | wall time | median s per 1B params | peak RSS |');
  console.log('| --- | --- | --- | --- |');
  console.log(line('qtk imatrix (calibration)', im));
  console.log(line('qtk quantize --imatrix', imq));
  console.log(line('imatrix route total', both));
  console.log(line('qtk quantize --method gptq (calibration + solve)', g));
  console.log(line('the same, --gptq-solver reference', gr));
} finally {
  rmSync(w, { recursive: true, force: true });
}
