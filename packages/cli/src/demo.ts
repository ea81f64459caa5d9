// `npm run demo`: the whole pipeline on a tiny generated qwen3_5 model, with this repository as the
// codebase. Each `$ npx qtk …` line is the real command, run as a user runs it from the repository
// root (paste it there to repeat a stage); the two stages that are library calls say so.
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '../../..');
const qtkBin = path.join(here, 'main.js');
const work = path.join(repoRoot, '.qtk', 'demo');

function qtk(args: string[], opts: { quietOutput?: boolean } = {}): string {
  const shown = args.map((a) => (path.isAbsolute(a) ? path.relative(repoRoot, a) || '.' : a));
  console.log(`\n$ npx qtk ${shown.join(' ')}`);
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

async function serveAndAsk(model: string, lora?: string): Promise<void> {
  const { startServer } = await import('@qtk/serve');
  const { default: OpenAI } = await import('openai');
  const server = await startServer({ model, port: 0, parallel: 1, ctx: 512, ...(lora ? { lora: [{ path: lora, scale: 1 }] } : {}) });
  const cmd = `npx qtk serve ${path.relative(repoRoot, model)}${lora ? ` --lora ${path.relative(repoRoot, lora)}` : ''} --port 0`;
  console.log(`(library call: startServer from @qtk/serve, which is what \`${cmd}\` runs; the demo keeps the server in-process to ask it a question) → listening on ${server.url}`);
  try {
    const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-needed' });
    const question = 'Write a haiku about quantization.';
    const models = await client.models.list();
    const r = await client.chat.completions.create({
      model: models.data[0]!.id,
      messages: [{ role: 'user', content: question }],
      max_tokens: 24,
      seed: 1,
    });
    console.log(`user: ${question}`);
    console.log(`assistant (a random tiny model, so expect word salad): ${JSON.stringify(r.choices[0]?.message.content)}`);
    console.log(`usage: ${JSON.stringify(r.usage)}`);
  } finally {
    await server.close();
  }
}

async function main(): Promise<void> {
  await fs.rm(work, { recursive: true, force: true });
  await fs.mkdir(work, { recursive: true });
  const hfDir = path.join(work, 'qwen3_5-tiny');

  await stage('1. Generate a tiny Qwen3.5-shaped Hugging Face checkpoint', async () => {
    const { generateFixture } = await import('@qtk/fixtures');
    // Widths are multiples of 256 so the k-quants apply to every matrix, as on the real model.
    const fx = await generateFixture({
      arch: 'qwen3_5', outDir: hfDir, seed: 1, layers: 4, hidden: 256, intermediate: 512,
      heads: 4, kvHeads: 2, headDim: 64, linearKeyHeads: 2, linearValueHeads: 6, linearKeyHeadDim: 128, linearValueHeadDim: 128,
    });
    console.log('(library call: generateFixture from @qtk/fixtures; qtk has no command for test checkpoints)');
    console.log(`wrote ${path.relative(repoRoot, fx.dir)}: ${fx.tensorCount} tensors, ${(fx.bytes / 1e6).toFixed(1)} MB`);
    console.log('  4 layers (3 Gated DeltaNet : 1 gated attention), GQA, V heads = 3 × K heads, MTP block, vision tensors, bf16, 2 shards, real Qwen3 tokenizer');
  });

  await stage('2. Inspect it', () => {
    const out = qtk(['inspect', hfDir], { quietOutput: true });
    console.log(out.split('\n').slice(0, 8).join('\n') + '\n  …');
  });

  const f16 = path.join(work, 'qwen3_5-tiny-F16.gguf');
  await stage('3. Convert to GGUF (f16), the way llama.cpp\'s converter does', () => {
    qtk(['convert', hfDir, '-o', f16, '--outtype', 'f16']);
  });

  const q4 = path.join(work, 'qwen3_5-tiny-Q4_K_M.gguf');
  await stage('4. Quantize to 4 bits (Q4_K_M, llama.cpp\'s per-tensor rules)', () => {
    const out = qtk(['quantize', f16, q4, '--bits', '4'], { quietOutput: true });
    const lines = out.trimEnd().split('\n');
    console.log([...lines.slice(0, 6), '  …', ...lines.slice(-3)].join('\n'));
  });

  await stage('5. Build a training dataset from this repository', () => {
    qtk(['dataset', 'build', repoRoot, '--tokenizer', f16, '--name', 'qtk-demo', '--out', path.join(work, 'datasets'), '--seq-len', '1024']);
  });

  await stage('6. Evaluate: perplexity and KL divergence of the 4-bit model against f16', async () => {
    const text = path.join(work, 'eval.txt');
    await fs.writeFile(text, await fs.readFile(path.join(repoRoot, 'README.md'), 'utf8'));
    qtk(['eval', 'kld', f16, q4, '--data', text, '--ctx', '128']);
  });

  await stage('7. Serve the 4-bit model and ask it one question with the official OpenAI client', async () => {
    await serveAndAsk(q4);
  });

  const runDir = path.join(work, 'runs', 'qtk-demo');
  await stage('8. Train a LoRA adapter on this repository for a few steps (the eval loss drops)', () => {
    const out = qtk(['lora', 'train', path.join(work, 'datasets', 'qtk-demo'), '--model', f16, '-o', runDir, '--seq-len', '256', '--steps', '8',
      '--grad-accum', '2', '--rank', '4', '--alpha', '8', '--lr', '1e-2', '--warmup', '0', '--eval-every', '4', '--eval-rows', '2', '--save-every', '4'], { quietOutput: true });
    console.log(out.trimEnd().split('\n').filter((l) => /^(plan|trained|eval loss|peak)/.test(l.trim())).join('\n'));
    console.log(`  run folder: adapter/ (PEFT), adapter.gguf, metrics.csv, loss.png, train.json, checkpoints/ in ${path.relative(repoRoot, runDir)}`);
  });

  await stage('9. Serve the f16 model with the new adapter (qtk serve --lora) and ask the same question', async () => {
    await serveAndAsk(f16, path.join(runDir, 'adapter.gguf'));
  });

  console.log(`\nDemo finished. Files are in ${path.relative(repoRoot, work)}/`);
}

main().catch((e) => {
  console.error(`demo: ${(e as Error).message}`);
  process.exit(1);
});
