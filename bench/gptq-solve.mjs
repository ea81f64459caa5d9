// GPTQ's two O(n³)/O(rows·n²) steps alone, reference vs fast, on synthetic Hessians of n columns:
//   prepare: H → U (prepareHessian, f64 TypeScript; prepareHessianBlocked, ggml products)
//   solve:   rows of n weights → Q4_K (gptqQuantizeRows, one row at a time, on fewer rows as n grows;
//            gptqQuantizeSlabs, slabs of 128 rows, inner batches of 64, batch updates as ggml matmuls), in seconds
//            per 1B weights (a tensor of that input width).
// H = S·(F·Fᵀ + 0.1·I)·S: 64 shared factors plus noise, channel scales S spread over e^±3.
// Usage: npm run build && node bench/gptq-solve.mjs [--n 1024,4096] [--ref-max 2048] [--rows 256] [--runs 3] [--threads 2]
import { performance } from 'node:perf_hooks';
import {
  GgmlTrailingUpdate, gptqQuantizeRows, gptqQuantizeSlabs, prepareHessian, prepareHessianBlocked,
} from '../packages/quantize/dist/index.js';
import { formatStats, runStats } from './stats.mjs';

const arg = (name, def) => { const i = process.argv.indexOf(`--${name}`); return i > 0 ? process.argv[i + 1] : def; };
const sizes = arg('n', '1024,4096').split(',').map(Number);
const refMax = Number(arg('ref-max', 2048)), rows = Number(arg('rows', 256)), runs = Number(arg('runs', 3)), threads = Number(arg('threads', 2));
const solveMax = Number(arg('solve-max', 8192));

function rng(seed) {
  let s = seed >>> 0;
  return () => { s = (s + 0x6d2b79f5) >>> 0; let t = s; t = Math.imul(t ^ (t >>> 15), t | 1); t ^= t + Math.imul(t ^ (t >>> 7), t | 61); return ((t ^ (t >>> 14)) >>> 0) / 4294967296; };
}
const gauss = (r) => Math.sqrt(-2 * Math.log(Math.max(r(), 1e-12))) * Math.cos(2 * Math.PI * r());

function hessian(n, seed) {
  const r = rng(seed), F = 64;
  const v = Float64Array.from({ length: F * n }, () => gauss(r));
  const s = Float64Array.from({ length: n }, () => Math.exp(3 * (2 * r() - 1)));
  const H = new Float32Array(n * n);
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    row.fill(0);
    for (let f = 0; f < F; f++) { const a = v[f * n + i]; const o = f * n; for (let j = 0; j <= i; j++) row[j] += a * v[o + j]; }
    row[i] += 0.1;
    for (let j = 0; j <= i; j++) { const x = s[i] * s[j] * row[j]; H[i * n + j] = x; H[j * n + i] = x; }
  }
  return H;
}

const time = (f) => { const t = performance.now(); const x = f(); return [(performance.now() - t) / 1000, x]; };

console.log(`threads ${threads}, Q4_K, ${rows} rows for the solve, ${runs} runs (reference: 1 run)`);
console.log('| n | prepare reference | prepare blocked | solve reference s/1B | solve fast s/1B |');
console.log('| ---: | --- | --- | --- | --- |');
for (const n of sizes) {
  const H = hessian(n, n);
  const pr = n <= refMax ? time(() => prepareHessian(H, n, { groupSize: 256 })) : undefined;
  const pb = [];
  let hb;
  for (let k = 0; k < runs; k++) { const [t, h] = time(() => prepareHessianBlocked(H, n, { groupSize: 256, threads })); pb.push(t); hb = h; }
  let sr = '—', sf = '—';
  if (n <= solveMax) {
    const r = rng(1);
    const W = Float32Array.from({ length: rows * n }, () => 0.02 * gauss(r));
    const perB = (secs, nr) => (secs / (nr * n)) * 1e9;
    {
      // the reference solver on fewer rows (its cost per row grows as n²), on the reference U where it was made
      const nr = Math.max(4, Math.min(rows, Math.round(rows * (1024 / n) ** 2)));
      const [t] = time(() => gptqQuantizeRows('Q4_K', W.subarray(0, nr * n), nr, pr ? pr[1] : hb));
      sr = `${perB(t, nr).toFixed(0)} s (${nr} rows)`;
    }
    const xs = [];
    for (let k = 0; k < runs; k++) {
      const [t] = time(() => {
        const u = new GgmlTrailingUpdate(hb, { batch: 256, slabRows: 128, threads });
        try { gptqQuantizeSlabs('Q4_K', W, rows, hb, { update: u, slabRows: 128, inner: 64 }); } finally { u.free(); }
      });
      xs.push(perB(t, rows));
    }
    sf = `${runStats(xs).median.toFixed(0)} s (${formatStats(xs)})`;
  }
  console.log(`| ${n} | ${pr ? `${pr[0].toFixed(2)} s` : '—'} | ${formatStats(pb)} | ${sr} | ${sf} |`);
}
