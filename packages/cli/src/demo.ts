// `npm run demo`: the whole pipeline on a tiny generated qwen3_5 model, with this repository as the
// codebase. Each stage runs the real `qtk` command, as a user would, and prints what it did.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const qtkBin = path.join(here, 'main.js');
const work = path.join(repoRoot, '.qtk', 'demo');

function qtk(args: string[], opts: { quietOutput?: boolean } = {}): string {
  console.log(`\n$ qtk ${args.join(' ')}`);
  const started = performance.now();
  const r = spawnSync(process.execPath, [qtkBin, ...args], { cwd: repoRoot, encoding: 'utf8', maxBuffer: 256 << 20 });
  const out = (r.stdout ?? '') + (r.stderr ?? '');
  if (r.status !== 0) {
    console.error(out);
    throw new Error(`qtk ${args[0]} failed with exit code ${r.status}`);
  }
  if (!opts.quietOutput) console.log(out.trimEnd());
  console.log(`  (${((performance.now() - started) / 1000).toFixed(1)} s)`);
  return out;
}

async function stage(title: string, body: () => Promise<void> | void): Promise<void> {
  console.log(`\n=== ${title} ===`);
  await body();
}

async function main(): Promise<void> {
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const hfDir = path.join(work, 'qwen3_5-tiny');

  await stage('1. Generate a tiny Qwen3.5-shaped Hugging Face checkpoint', async () => {
    const { generateFixture } = await import('@qtk/fixtures');
    const fx = await generateFixture({ arch: 'qwen3_5', outDir: hfDir, seed: 1 });
    console.log(`wrote ${fx.dir}: ${fx.tensorCount} tensors, ${(fx.bytes / 1e6).toFixed(1)} MB (bf16, 2 shards, real Qwen3 tokenizer)`);
  });

  await stage('2. Inspect it', () => {
    const out = qtk(['inspect', hfDir], { quietOutput: true });
    console.log(out.split('\n').slice(0, 12).join('\n') + '\n  …');
  });

  console.log(`\nDemo finished. Files are in ${path.relative(repoRoot, work)}/`);
}

main().catch((e) => {
  console.error(`demo: ${(e as Error).message}`);
  process.exit(1);
});
