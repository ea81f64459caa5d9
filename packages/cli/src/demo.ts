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
  // the same server `qtk serve` and `qtk adapt --serve` start
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

  // A budget that forces real choices: 420 MB rules out LoRA on F16 (QLoRA on Q8_0 is chosen), and the served
  // file must fit 0.36 GiB with its context at 512 tokens, which a Q8_0 file does not.
  const runDir = path.join(work, 'runs', 'adapt');
  const adapt = [
    'adapt', hfDir, repoRoot, '--vram', '420MB', '--headroom', '0', '--ctx', '512', '--fit', '0.36GiB', '-o', runDir,
    '--seq-len', '128', '--rank', '4', '--alpha', '8', '--steps', '4', '--grad-accum', '1', '--lr', '1e-2', '--warmup', '0',
    '--eval-every', '0', '--eval-rows', '1', '--save-every', '2', '--method', 'imatrix', '--calib-tokens', '1024', '--eval-chunks', '4', '--baseline',
  ];

  await stage('2. Plan: which training precision and which final types fit the budget (nothing is written)', () => {
    qtk([...adapt, '--plan']);
  });

  await stage('3. Adapt: convert → dataset of this repository → QLoRA → merge → imatrix → fit → held-out eval and report', () => {
    const out = qtk(adapt, { quietOutput: true });
    console.log(out.trimEnd().split('\n').filter((l) => /^(stage \S+: done|held-out|final:|report:|plan: \d+ steps)/.test(l.trim())).join('\n'));
    console.log(`  ${path.relative(repoRoot, runDir)}/: stages.json, one folder per stage, report.md, report.json (its options: --config reruns it), loss.png`);
  });

  await stage('4. Run it again: every stage is reused (change one option and only the stages after it run)', () => {
    const out = qtk(adapt, { quietOutput: true });
    console.log(out.trimEnd().split('\n').filter((l) => /^report:/.test(l.trim())).join('\n'));
  });

  await stage('5. Serve the adapted, fitted model and ask it one question with the official OpenAI client', async () => {
    console.log(`(to serve it from the shell: npx qtk ${[...adapt.map((a) => (path.isAbsolute(a) ? path.relative(repoRoot, a) || '.' : a)), '--serve', '--port', '8080'].join(' ')})`);
    await serveAndAsk(path.join(runDir, 'quantize', 'model.gguf'));
  });

  console.log(`\nDemo finished. Files are in ${path.relative(repoRoot, work)}/`);
}

main().catch((e) => {
  console.error(`demo: ${(e as Error).message}`);
  process.exit(1);
});
