// How structured a model's matmul inputs are, from the Hessians GPTQ uses (H = 2XᵀX/n over 1,024 tokens of a
// text): for every distinct input of layers 0 and 3, the participation ratio (tr H)² / tr(H²) as a share of
// the input width (1 for white inputs with enough tokens, small when a few directions carry the energy) and
// max/median of diag(H) (outlier channels). Used to describe the fixtures of bench/gptq-kld.sh.
// Usage: npm run build && node bench/activation-stats.mjs <model.gguf> <text file> [--threads 2]
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const { HessianCollector, Model, loadEvalData, readModelParams } = await import(pathToFileURL(path.join(root, 'packages/engine/dist/index.js')).href);
const { GgufReader } = await import(pathToFileURL(path.join(root, 'packages/core/dist/index.js')).href);

const [model, text] = process.argv.slice(2);
const ti = process.argv.indexOf('--threads');
const threads = ti > 0 ? Number(process.argv[ti + 1]) : 2;
if (!model || !text) {
  console.error('usage: node bench/activation-stats.mjs <model.gguf> <text file> [--threads N]');
  process.exit(2);
}
const r = await GgufReader.open(model);
const { nVocab } = readModelParams(r);
await r.close();
const data = await loadEvalData(model, nVocab, { data: text, maxTokens: 1024 });
const m = await Model.load(model, { threads });
const col = new HessianCollector((n) => /^blk\.[03]\./.test(n));
const s = m.session({ nCtx: 512, nBatch: 512 });
for (let w = 0; w < 2; w++) {
  s.reset();
  s.eval(data.tokens.slice(w * 512, (w + 1) * 512), { logits: 'none', hooks: col.hooks() });
}
console.log('| input (first weight reading it) | width | (tr H)² / tr(H²) / width | max / median diag(H) |');
console.log('| --- | --- | --- | --- |');
for (const [key, e] of col.entries) {
  const n = e.nIn;
  const H = HessianCollector.hessian(e);
  let tr = 0, tr2 = 0;
  const d = [];
  for (let i = 0; i < n; i++) { tr += H[i * n + i]; d.push(H[i * n + i]); }
  for (const v of H) tr2 += v * v;
  d.sort((a, b) => a - b);
  console.log(`| ${key} | ${n} | ${((tr * tr) / tr2 / n).toFixed(3)} | ${(d[n - 1] / d[n >> 1]).toFixed(1)} |`);
}
s.free();
m.free();
