#!/usr/bin/env node
// Benchmark: `qtk serve` beside llama-server on the same GGUF, threads and parallelism, at 1, 4 and 8
// concurrent clients (parallelism = clients). Both get the same load generator: N workers, each posting
// greedy /v1/completions requests back to back. Reports generated tokens/s (from each response's usage)
// and p50/p99 request latency: median and spread (min–max) of the rounds, which alternate the servers.
// Usage: node bench/serve.mjs [model.gguf] [--clients 1,4,8] [--requests-per-client 2] [--max-tokens 32]
//        [--threads 2] [--ctx 256] [--rounds 3] [--no-prebuilt-anchor]
// Without a model it builds the qwen3_5 fixture (f16, hidden 512, 8 layers, real Qwen3 vocabulary).
// llama-server: LLAMA_SERVER=path, default ~/.cache/qtk-anchors/build/bin/llama-server, built once from the
// llama.cpp source node-llama-cpp bundles (git clone node_modules/node-llama-cpp/llama/gitRelease.bundle, then
// cmake -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON -DLLAMA_CURL=OFF and build the llama-server target).
// The prompts are screened first on llama-server: on a random-weight model greedy decoding often emits
// bytes that are not valid UTF-8, and llama-server then answers 500 ("does not match the expected
// Content-only format": its output parser accepts valid UTF-8 only) after generating every token. Both
// servers get only prompts llama-server answered, so that every request counts on both sides.
// A third row runs the same llama-server on node-llama-cpp's prebuilt libllama/ggml (the binaries qtk decodes
// with; both are built from the same llama.cpp commit): a folder of links to those libraries beside a copy of
// llama-server and its own server/common libraries, put first on LD_LIBRARY_PATH (Linux only; left out
// elsewhere or with --no-prebuilt-anchor). It tells the scheduling apart from the build of the kernels.
// Prints a Markdown section and puts it into bench/RESULTS.md between the serve markers.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { args, fixtureGguf, FIXTURE_LABEL, flag, llamaServerPath, positionals, root } from './serve-common.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const valued = new Set(['--clients', '--requests-per-client', '--max-tokens', '--threads', '--ctx', '--rounds']);
const positional = positionals((a) => valued.has(a));
const clientCounts = flag('--clients', '1,4,8').split(',').map(Number);
const perClient = Number(flag('--requests-per-client', '2'));
const maxTokens = Number(flag('--max-tokens', '32'));
const threads = Number(flag('--threads', String(Math.min(2, os.availableParallelism()))));
const ctxSize = Number(flag('--ctx', '256'));
const rounds = Number(flag('--rounds', '3'));
const prebuiltBins = path.join(root, `node_modules/@node-llama-cpp/${process.platform}-${process.arch}/bins/${process.platform}-${process.arch}`);
const withPrebuilt = !args.includes('--no-prebuilt-anchor') && process.platform === 'linux' && existsSync(prebuiltBins);
const llamaServer = llamaServerPath();
if (!existsSync(llamaServer)) throw new Error(`llama-server not found at ${llamaServer}: build it (see the header of bench/serve.mjs) or set LLAMA_SERVER.`);

const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-bench-serve-'));
const modelPath = positional[0] ? path.resolve(positional[0]) : await fixtureGguf(tmp);
const modelLabel = positional[0] ? path.basename(modelPath) : FIXTURE_LABEL;

/** llama-server linked against node-llama-cpp's prebuilt libraries: a folder with a copy of the binary and
 *  of its server/common/mtmd libraries, and links named as llama-server asks (libllama.so.0, libggml.so.0,
 *  libggml-base.so.0) to the prebuilt ones; ggml loads its best CPU variant from the binary's folder. */
async function prebuiltServer() {
  const dir = path.join(tmp, 'llama-server-prebuilt');
  await fs.mkdir(dir);
  const own = path.dirname(llamaServer);
  for (const f of await fs.readdir(own)) {
    if (f === path.basename(llamaServer) || /^lib(llama-server-impl\.so|llama-common\.so\.0|mtmd\.so\.0)$/.test(f)) await fs.copyFile(path.join(own, f), path.join(dir, f));
  }
  const prebuilt = await fs.readdir(prebuiltBins);
  for (const f of prebuilt.filter((x) => x.endsWith('.so'))) await fs.symlink(path.join(prebuiltBins, f), path.join(dir, f));
  const named = (re) => prebuilt.find((x) => re.test(x));
  for (const [link, re] of [['libllama.so.0', /^libllama\.v[\d.]+\.so$/], ['libggml.so.0', /^libggml\.v[\d.]+\.so$/], ['libggml-base.so.0', /^libggml-base\.so$/]]) {
    const target = named(re);
    if (!target) throw new Error(`${prebuiltBins} has no library matching ${re}; run with --no-prebuilt-anchor.`);
    await fs.symlink(path.join(prebuiltBins, target), path.join(dir, link));
  }
  return path.join(dir, path.basename(llamaServer));
}
const prebuiltLlamaServer = withPrebuilt ? await prebuiltServer() : undefined;
const PREBUILT = 'llama-server, prebuilt libs';

/** Candidate prompt k; distinct early, so that no request reuses another's prompt cache. */
const candidate = (k) => `Request ${k}: write a short story about the number ${k * 7 + 3}.`;

/** The first `need` candidates llama-server answers with 200, asked `parallel` at a time. */
async function screenPrompts(need, parallel) {
  const server = await startServer('llama-server', parallel);
  const ok = new Map();
  let next = 0;
  let tried = 0;
  const worker = async () => {
    while (ok.size < need && next < need * 10) {
      const k = next++;
      tried++;
      const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt: candidate(k), max_tokens: maxTokens, temperature: 0 }) });
      await res.text();
      if (res.status === 200) ok.set(k, candidate(k));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  await server.stop();
  const prompts = [...ok].sort((a, b) => a[0] - b[0]).map(([, p]) => p).slice(0, need);
  if (prompts.length < need) throw new Error(`llama-server answered only ${prompts.length} of ${tried} prompts; the bench needs ${need}.`);
  return { prompts, tried };
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
};

/** Starts a server process and resolves with its base URL once /health answers 200. */
async function startServer(kind, parallel) {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const argv =
    kind !== 'qtk serve'
      ? [kind === PREBUILT ? prebuiltLlamaServer : llamaServer, ['-m', modelPath, '--host', '127.0.0.1', '--port', String(port), '-t', String(threads), '-tb', String(threads), '-np', String(parallel), '-c', String(ctxSize * parallel), '-ngl', '0', '--no-webui']]
      : [process.execPath, [path.join(root, 'packages/cli/dist/main.js'), 'serve', modelPath, '--host', '127.0.0.1', '--port', String(port), '--parallel', String(parallel), '--queue', String(4 * parallel), '--threads', String(threads), '--ctx', String(ctxSize), '--no-gpu']];
  const env = kind === PREBUILT ? { ...process.env, LD_LIBRARY_PATH: path.dirname(prebuiltLlamaServer) } : process.env;
  const child = spawn(argv[0], argv[1], { stdio: ['ignore', 'ignore', 'pipe'], env });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-4000)));
  const exited = new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`${kind} exited (${code}): ${stderr}`))));
  const url = `http://127.0.0.1:${port}`;
  const ready = (async () => {
    for (;;) {
      try {
        if ((await fetch(`${url}/health`)).status === 200) return;
      } catch {}
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  await Promise.race([ready, exited]);
  exited.catch(() => {});
  return { kind, url, stop: () => new Promise((r) => { child.on('exit', r); child.kill('SIGTERM'); }) };
}

/** `clients` workers post requests back to back until `clients × perClient` are done; round r uses
 *  prompts[r × total …], the warm-up (round -1) the last prompt. */
async function load(server, clients, round) {
  const total = clients * perClient;
  const latencies = [];
  let tokens = 0;
  let failed = 0;
  let next = 0;
  const post = async (i) => {
    const prompt = round < 0 ? prompts[prompts.length - 1] : prompts[round * total + i];
    const t = performance.now();
    const res = await fetch(`${server.url}/v1/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ prompt, max_tokens: maxTokens, temperature: 0 }) });
    const body = await res.text();
    if (res.status !== 200) return void failed++;
    latencies.push(performance.now() - t);
    tokens += JSON.parse(body).usage.completion_tokens;
  };
  const worker = async () => {
    for (let i = next++; i < total; i = next++) await post(i);
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return { tps: tokens / seconds, p50: pct(latencies, 50), p99: pct(latencies, 99), failed, tokens };
}

const maxClients = Math.max(...clientCounts);
const { prompts, tried } = await screenPrompts(rounds * maxClients * perClient + 1, maxClients);
const loadBefore = os.loadavg()[0];
const table = [];
for (const clients of clientCounts) {
  const kinds = ['llama-server', ...(withPrebuilt ? [PREBUILT] : []), 'qtk serve'];
  const servers = [];
  for (const kind of kinds) servers.push(await startServer(kind, clients));
  for (const s of servers) await load(s, 1, -1); // warm-up
  const runs = new Map(servers.map((s) => [s.kind, []]));
  for (let r = 0; r < rounds; r++) {
    // Rotate which server goes first, so that load from other processes hits all alike.
    for (let j = 0; j < servers.length; j++) {
      const s = servers[(j + r) % servers.length];
      runs.get(s.kind).push(await load(s, clients, r));
    }
  }
  for (const s of servers) await s.stop();
  table.push({ clients, runs });
}
const loadAfter = os.loadavg()[0];
await fs.rm(tmp, { recursive: true, force: true });

const stat = (list, f, digits = 0) => {
  const xs = list.map(f);
  return `${pct(xs, 50).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
};
const rows = [];
for (const { clients, runs } of table) {
  const medians = (kind) => runs.has(kind) ? { tps: pct(runs.get(kind).map((x) => x.tps), 50), p50: pct(runs.get(kind).map((x) => x.p50), 50) } : undefined;
  const ref = medians('llama-server');
  const pre = medians(PREBUILT);
  for (const [kind, list] of runs) {
    const m = medians(kind);
    const vsPre = pre ? `${(m.tps / pre.tps).toFixed(2)} / ${(pre.p50 / m.p50).toFixed(2)}` : '–';
    rows.push(`| ${clients} | ${kind} | ${stat(list, (x) => x.tps, 1)} | ${stat(list, (x) => x.p50)} | ${stat(list, (x) => x.p99)} | ${(m.tps / ref.tps).toFixed(2)} | ${(ref.p50 / m.p50).toFixed(2)} | ${vsPre} | ${list.reduce((s, x) => s + x.failed, 0)} |`);
  }
}
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const md = [
  `## qtk serve vs llama-server`,
  ``,
  `${new Date().toISOString().slice(0, 10)} · ${modelLabel} · CPU (${cpu}, ${os.availableParallelism()} cores, ${threads} threads, 1-min load average ${loadBefore.toFixed(1)} at start, ${loadAfter.toFixed(1)} at end) · parallel sequences = clients · ${perClient} greedy /v1/completions requests of max ${maxTokens} tokens per client and round · median (min–max) of ${rounds} rounds rotating the servers · \`node bench/serve.mjs${args.length ? ` ${args.join(' ')}` : ''}\``,
  ``,
  `| clients | server | generated tokens/s | p50 latency (ms) | p99 latency (ms) | tokens/s vs llama-server | p50 speed vs llama-server | tokens/s / p50 speed vs llama-server on the prebuilt libs | failed requests |`,
  `| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`,
  ...rows,
  ``,
  `Best round = the range's upper end for tokens/s and lower end for latency. Tokens are counted from each successful response's usage; failed requests (non-200) count in neither tokens nor latency. Prompts: the first ${prompts.length} of ${tried} candidates that llama-server answered (on a random-weight model the rest decode to invalid UTF-8, which its output parser refuses with a 500 after generating). "p50 speed" is llama-server's p50 divided by the row's (above 1 = faster). "llama-server" is built from source here (-march=native, OpenMP); "${PREBUILT}" is the same llama-server run on node-llama-cpp's prebuilt libllama/ggml, the binaries qtk serve decodes with (its best CPU variant, ggml's own threadpool). The machine is shared: compare rows of one run, not runs.`,
].join('\n');
console.log(md);

const resultsFile = path.join(here, 'RESULTS.md');
const start = '<!-- serve:start (written by bench/serve.mjs) -->';
const end = '<!-- serve:end -->';
let results = await fs.readFile(resultsFile, 'utf8').catch(() => '# Benchmarks\n');
const block = `${start}\n${md}\n${end}`;
results = results.includes(start) ? results.replace(new RegExp(`${start.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[\\s\\S]*?${end}`), block) : `${results.trimEnd()}\n\n${block}\n`;
await fs.writeFile(resultsFile, results);
