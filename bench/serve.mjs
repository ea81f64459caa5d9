#!/usr/bin/env node
// Benchmark: `qtk serve` under concurrent load (autocannon) against node-llama-cpp driven directly with
// the same model, prompts, concurrency, sequences and threads, in the same run. Reports generated
// tokens/s and p50/p99 request latency, and the server's overhead as a ratio.
// Usage: node bench/serve.mjs [model.gguf] [--concurrency 4] [--requests 32] [--max-tokens 64] [--threads 2] [--ctx 512] [--rounds 3] [--gpu]
// Without a model it builds the tiny seeded qwen3 fixture (real Qwen3 tokenizer) in a temp folder.
// Prints a Markdown section and puts it into bench/RESULTS.md between the serve markers.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { getLlama, LlamaCompletion } from 'node-llama-cpp';
import { importTs } from './serve-run-ts.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const valued = new Set(['--concurrency', '--requests', '--max-tokens', '--threads', '--ctx', '--rounds']);
const positional = args.filter((a, i) => !a.startsWith('--') && !(i > 0 && valued.has(args[i - 1])));
const concurrency = Number(flag('--concurrency', '4'));
const requests = Number(flag('--requests', '32'));
const maxTokens = Number(flag('--max-tokens', '64'));
const threads = Number(flag('--threads', String(Math.min(2, os.availableParallelism()))));
const ctxSize = Number(flag('--ctx', '512'));
const rounds = Number(flag('--rounds', '3'));
const gpu = args.includes('--gpu') ? 'auto' : false;

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-bench-serve-'));
let modelPath = positional[0] ? path.resolve(positional[0]) : undefined;
let modelLabel = modelPath ? path.basename(modelPath) : 'tiny qwen3 fixture (f32, real Qwen3 vocab)';
if (!modelPath) {
  const { generateFixture } = await importTs(path.join(root, 'packages/fixtures/src/index.ts'));
  const { convertCheckpoint } = await importTs(path.join(root, 'packages/convert/src/index.ts'));
  const { dir } = await generateFixture({ arch: 'qwen3', outDir: path.join(tmp, 'hf') });
  modelPath = path.join(tmp, 'tiny-qwen3.gguf');
  await convertCheckpoint({ input: dir, output: modelPath, outtype: 'f32', log: () => {} });
}

const prompts = Array.from({ length: requests }, (_, i) => `Request ${i}: write a short story about the number ${i * 7 + 3}.`);
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
};

// 1. node-llama-cpp directly: one sequence per worker, the same bounded loop of requests.
async function setupDirect() {
  const llama = await getLlama({ gpu, build: 'never' });
  const model = await llama.loadModel({ modelPath });
  const context = await model.createContext({ sequences: concurrency, contextSize: ctxSize, threads });
  const seqs = Array.from({ length: concurrency }, () => context.getSequence());
  await new LlamaCompletion({ contextSequence: seqs[0] }).generateCompletion(prompts[0], { maxTokens, temperature: 0 }); // warm-up, as the server gets one
  return { seqs, dispose: async () => { await context.dispose(); await model.dispose(); await llama.dispose(); } };
}

async function runDirect(seqs) {
  const latencies = [];
  let tokens = 0;
  let next = 0;
  const worker = async (seq) => {
    const completion = new LlamaCompletion({ contextSequence: seq });
    for (let i = next++; i < requests; i = next++) {
      const t = performance.now();
      await completion.generateCompletion(prompts[i], { maxTokens, temperature: 0, onToken: (ts) => (tokens += ts.length) });
      latencies.push(performance.now() - t);
    }
  };
  const t0 = performance.now();
  await Promise.all(seqs.map(worker));
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, tokens, p50: pct(latencies, 50), p99: pct(latencies, 99), failed: 0 };
}

// 2. qtk serve in its own process, loaded with autocannon (`connections` = concurrency).
async function startServe() {
  const cli = path.join(root, 'packages/cli/src/main.ts');
  const child = spawn(process.execPath, [path.join(here, 'serve-run-ts.mjs'), cli, 'serve', modelPath, '--port', '0', '--parallel', String(concurrency), '--queue', String(4 * concurrency), '--threads', String(threads), '--ctx', String(ctxSize), ...(gpu ? [] : ['--no-gpu'])], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const url = await new Promise((resolve, reject) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      const m = /on (http:\/\/\S+)/.exec(stderr);
      if (m) resolve(m[1]);
    });
    child.on('exit', (code) => reject(new Error(`qtk serve exited (${code}): ${stderr}`)));
  });
  const modelId = (await (await fetch(`${url}/v1/models`)).json()).data[0].id;
  return { child, url, modelId };
}

async function runServe(url, modelId, endpoint) {
  const body = (i) =>
    endpoint === 'chat'
      ? { model: modelId, messages: [{ role: 'user', content: prompts[i] }], max_tokens: maxTokens, temperature: 0 }
      : { model: modelId, prompt: prompts[i], max_tokens: maxTokens, temperature: 0 };
  const route = endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
  await fetch(`${url}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body(0)) }); // warm-up
  let issued = 0;
  let tokens = 0;
  let failed = 0;
  const t0 = performance.now();
  const result = await autocannon({
    url,
    connections: concurrency,
    amount: requests,
    timeout: 300,
    requests: [
      {
        method: 'POST',
        path: route,
        headers: { 'content-type': 'application/json' },
        setupRequest: (req) => ({ ...req, body: JSON.stringify(body(issued++ % requests)) }),
        onResponse: (status, text) => {
          if (status !== 200) failed++;
          else tokens += JSON.parse(text).usage.completion_tokens;
        },
      },
    ],
  });
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, tokens, failed, p50: result.latency.p50, p99: result.latency.p99 };
}

const loadBefore = os.loadavg()[0];
// Rounds alternate direct and server runs, so load from other processes hits both alike; medians are reported.
const direct = await setupDirect();
const serve = await startServe();
const runs = { direct: [], completions: [], chat: [] };
for (let r = 0; r < rounds; r++) {
  runs.direct.push(await runDirect(direct.seqs));
  runs.completions.push(await runServe(serve.url, serve.modelId, 'completions'));
  runs.chat.push(await runServe(serve.url, serve.modelId, 'chat'));
}
serve.child.kill('SIGTERM');
await new Promise((r) => serve.child.on('exit', r));
await direct.dispose();
await fs.rm(tmp, { recursive: true, force: true });

const median = (list, f) => pct(list.map(f), 50);
const summary = (list) => ({
  tps: median(list, (x) => x.tokens / x.seconds),
  p50: median(list, (x) => x.p50),
  p99: median(list, (x) => x.p99),
  failed: list.reduce((s, x) => s + x.failed, 0),
  tokens: median(list, (x) => x.tokens),
});
const d = summary(runs.direct);
const rows = [
  ['node-llama-cpp direct (LlamaCompletion)', d],
  ['qtk serve /v1/completions', summary(runs.completions)],
  ['qtk serve /v1/chat/completions', summary(runs.chat)],
];
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const md = [
  `## qtk serve vs node-llama-cpp direct`,
  ``,
  `${new Date().toISOString().slice(0, 10)} · ${modelLabel} · ${gpu ? 'GPU if found' : 'CPU'} (${cpu}, ${os.availableParallelism()} cores, ${threads} threads, 1-min load average ${loadBefore.toFixed(1)} at start) · ${concurrency} concurrent clients = ${concurrency} sequences · ${requests} requests of max ${maxTokens} tokens, greedy · median of ${rounds} alternating rounds · load generator: autocannon (server), the same bounded loop of ${concurrency} workers (direct) · \`node bench/serve.mjs${args.length ? ` ${args.join(' ')}` : ''}\``,
  ``,
  `| path | tokens generated per round | generated tokens/s | p50 latency (ms) | p99 latency (ms) | tokens/s vs direct | failed requests |`,
  `| --- | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...rows.map(([name, x]) => `| ${name} | ${x.tokens} | ${x.tps.toFixed(1)} | ${Math.round(x.p50)} | ${Math.round(x.p99)} | ${(x.tps / d.tps).toFixed(3)} | ${x.failed} |`),
  ``,
  `Tokens are counted from each response's usage (server) and from the generated tokens (direct). The server side includes HTTP, JSON, the chat template (chat row) and the separate process; the machine is shared, so compare rows of one run, not runs.`,
].join('\n');
console.log(md);

const resultsFile = path.join(here, 'RESULTS.md');
const start = '<!-- serve:start (written by bench/serve.mjs) -->';
const end = '<!-- serve:end -->';
let results = await fs.readFile(resultsFile, 'utf8').catch(() => '# Benchmarks\n');
const block = `${start}\n${md}\n${end}`;
results = results.includes(start) ? results.replace(new RegExp(`${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\s\\S]*?${end}`), block) : `${results.trimEnd()}\n\n${block}\n`;
await fs.writeFile(resultsFile, results);
