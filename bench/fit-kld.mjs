#!/usr/bin/env node
// `qtk quantize --fit` vs the uniform preset of the same size: mean KLD against the f16 model on held-out
// text (`qtk eval kld`), on the tiny qwen3_5 fixture (hidden 256, 8 layers, 6 Gated DeltaNet + 2 attention,
// MTP block). For each of Q3_K_M, Q4_K_M and IQ4_XS: quantize, then --fit at that file's exact byte size,
// without and with an importance matrix (collected by `qtk imatrix` on other text). Needs `npm run build`.
// Usage: node bench/fit-kld.mjs [--dir /tmp/qtk-bench-fit] [--threads 2] [--presets Q3_K_M,Q4_K_M,IQ4_XS] [--imatrix off,on]
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync, writeFileSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string', default: '/tmp/qtk-bench-fit' },
    threads: { type: 'string', default: '2' },
    presets: { type: 'string', default: 'Q3_K_M,Q4_K_M,IQ4_XS' },
    imatrix: { type: 'string', default: 'off,on' },
  },
});
const root = new URL('..', import.meta.url).pathname;
const QTK = path.join(root, 'packages/cli/dist/main.js');
const FIXTURE = path.join(root, 'packages/fixtures/dist/cli.js');
const d = args.dir;
mkdirSync(d, { recursive: true });
const run = (cmd, argv) => {
  const r = spawnSync(process.execPath, [cmd, ...argv], { encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${path.basename(cmd)} ${argv.join(' ')} failed:\n${r.stderr}\n${r.stdout}`);
  return r.stdout;
};
const t = ['--threads', args.threads];

// Held-out text for KLD: this repository's README; calibration text for the imatrix: the package READMEs.
const evalText = path.join(d, 'eval.txt');
const calibText = path.join(d, 'calib.txt');
// Written once per --dir, so runs resumed in the same folder score the same text.
if (!existsSync(evalText)) writeFileSync(evalText, readFileSync(path.join(root, 'README.md'), 'utf8'));
if (!existsSync(calibText)) writeFileSync(calibText, ['core', 'quantize', 'engine', 'convert', 'serve'].map((p) => {
  const f = path.join(root, 'packages', p, 'README.md');
  return existsSync(f) ? readFileSync(f, 'utf8') : '';
}).join('\n'));

const f16 = path.join(d, 'model-f16.gguf');
if (!existsSync(f16)) {
  run(FIXTURE, ['--arch', 'qwen3_5', '--out', path.join(d, 'hf'), '--hidden', '256', '--force']);
  run(QTK, ['convert', path.join(d, 'hf'), '-o', f16, '--outtype', 'f16']);
}
const imatrix = path.join(d, 'imatrix.gguf');
if (!existsSync(imatrix)) run(QTK, ['imatrix', f16, '--data', calibText, '-o', imatrix, '--force', ...t]);
const kld = (m) => JSON.parse(run(QTK, ['eval', 'kld', f16, m, '--data', evalText, '--json', ...t]));

const rows = [];
for (const preset of args.presets.split(',')) {
  for (const withImatrix of args.imatrix.split(',').map((m) => m === 'on')) {
    const im = withImatrix ? ['--imatrix', imatrix] : [];
    const tag = withImatrix ? '-imat' : '';
    const uniform = path.join(d, `model-${preset}${tag}.gguf`);
    run(QTK, ['quantize', f16, uniform, '--type', preset, '--force', ...im, ...t]);
    const size = statSync(uniform).size;
    const fit = path.join(d, `model-fit-${preset}${tag}.gguf`);
    run(QTK, ['quantize', f16, fit, '--fit', String(size), '--force', ...im, ...t]);
    const a = kld(uniform), b = kld(fit);
    rows.push({ preset, imatrix: withImatrix, size, fitSize: statSync(fit).size, uniform: a, fit: b });
    console.error(JSON.stringify(rows.at(-1)));
  }
}
const k = (x) => `${x.meanKld.toFixed(4)} ± ${x.meanKldError.toFixed(4)}`;
const top = (x) => `${(100 * x.sameTop).toFixed(1)} %`;
console.log('| preset | imatrix | uniform bytes | uniform mean KLD | same top | --fit bytes (budget = uniform) | --fit mean KLD | same top |');
console.log('| --- | --- | ---: | --- | ---: | ---: | --- | ---: |');
for (const r of rows) console.log(`| ${r.preset} | ${r.imatrix ? 'yes' : 'no'} | ${r.size} | ${k(r.uniform)} | ${top(r.uniform)} | ${r.fitSize} | ${k(r.fit)} | ${top(r.fit)} |`);
