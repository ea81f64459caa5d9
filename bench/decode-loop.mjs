#!/usr/bin/env node
// Benchmark: the cost of one generated token in a single stream, decode path by decode path, on the same
// GGUF and threads. Each path runs in a fresh process that greedily generates --tokens tokens after a short
// prompt and reports wall ms, CPU ms (the whole process) and voluntary context switches per token:
//   node-llama-cpp: LlamaContextSequence.evaluate, as qtk serve decodes. llama_decode and the sampler each
//     run in a libuv worker; the prebuilt ggml has no OpenMP and node-llama-cpp attaches no ggml
//     threadpool, so every decode starts and joins its compute threads.
//   libllama, compute threads per decode: node-llama-cpp's prebuilt libllama called through koffi from the
//     JS thread (llama_decode, logits row, argmax in JS), no threadpool attached.
//   libllama + persistent threadpool: the same with one ggml threadpool attached for the context's life
//     (llama_attach_threadpool), as llama-server and llama-cli do.
//   libllama + persistent threadpool, decode in a libuv worker: the same, llama_decode called with koffi's
//     async call (one worker round trip per token, the decode half of node-llama-cpp's two).
//   llama-server: one /completion request (ignore_eos), its own predicted_per_token_ms; CPU and switches of
//     the server process over the request.
// All paths must produce the same first tokens (checked). Rounds alternate the order of the paths.
// Usage: node bench/decode-loop.mjs [model.gguf] [--threads 2] [--tokens 64] [--rounds 3]
// llama-server: LLAMA_SERVER=path, default ~/.cache/qtk-anchors/build/bin/llama-server (see bench/serve.mjs).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importTs } from './serve-run-ts.mjs';
import { args, fixtureGguf, FIXTURE_LABEL, flag, llamaServerPath, positionals, root } from './serve-common.mjs';

const threads = Number(flag('--threads', '2'));
const tokens = Number(flag('--tokens', '64'));
const rounds = Number(flag('--rounds', '3'));
const PROMPT = 'Request 0: write a short story about the number 3.';
const CHECK = 8;
const llamaServer = llamaServerPath();

/** Voluntary context switches of all threads of a process (sleeps that need a wake-up). */
function switches(pid = 'self') {
  let v = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      v += Number(/\nvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'))[1]);
    } catch {} // the thread ended meanwhile
  }
  return v;
}
const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function nodeLlamaCpp(model) {
  const { getLlama, LlamaLogLevel } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const m = await llama.loadModel({ modelPath: model });
  const ctx = await m.createContext({ sequences: 1, contextSize: 256, threads });
  const seq = ctx.getSequence();
  const prompt = m.tokenize(PROMPT);
  const run = async () => {
    await seq.clearHistory();
    const out = [];
    let t0, c0, s0;
    for await (const t of seq.evaluate(prompt, { temperature: 0 })) {
      out.push(t);
      if (out.length === 1) [t0, c0, s0] = [performance.now(), cpuMs(), switches()];
      if (out.length > tokens) break;
    }
    return { ms: (performance.now() - t0) / tokens, cpu: (cpuMs() - c0) / tokens, sw: (switches() - s0) / tokens, first: out.slice(0, CHECK) };
  };
  await run(); // warm-up
  return run();
}

async function libllama(model, pool, worker = false) {
  const { loadGgml, koffi } = await importTs(path.join(root, 'packages/engine/src/ggml/lib.ts'));
  const g = loadGgml('cpu');
  const ll = koffi.load(path.join(g.binDir, 'libllama.v0.4.0.so'));
  // include/llama.h of the bundled llama.cpp
  const ModelParams = koffi.struct('bench_mparams', { devices: 'void *', tensor_buft_overrides: 'void *', n_gpu_layers: 'int32_t', split_mode: 'int', load_mode: 'int', lazy_mode: 'int', main_gpu: 'int32_t', tensor_split: 'void *', progress_callback: 'void *', progress_callback_user_data: 'void *', kv_overrides: 'void *', vocab_only: 'bool', check_tensors: 'bool', use_extra_bufts: 'bool', no_host: 'bool', no_alloc: 'bool', load_mtp: 'bool' });
  const CtxParams = koffi.struct('bench_cparams', { n_ctx: 'uint32_t', n_batch: 'uint32_t', n_ubatch: 'uint32_t', n_seq_max: 'uint32_t', n_rs_seq: 'uint32_t', n_outputs_max: 'uint32_t', n_outputs_max_per_seq: 'uint32_t', n_threads: 'int32_t', n_threads_batch: 'int32_t', ctx_type: 'int', rope_scaling_type: 'int', pooling_type: 'int', attention_type: 'int', flash_attn_type: 'int', rope_freq_base: 'float', rope_freq_scale: 'float', yarn_ext_factor: 'float', yarn_attn_factor: 'float', yarn_beta_fast: 'float', yarn_beta_slow: 'float', yarn_orig_ctx: 'uint32_t', defrag_thold: 'float', cb_eval: 'void *', cb_eval_user_data: 'void *', type_k: 'int', type_v: 'int', abort_callback: 'void *', abort_callback_data: 'void *', embeddings: 'bool', offload_kqv: 'bool', no_perf: 'bool', op_offload: 'bool', swa_full: 'bool', kv_unified: 'bool', samplers: 'void *', n_samplers: 'size_t', ctx_other: 'void *' });
  const Batch = koffi.struct('bench_batch', { n_tokens: 'int32_t', token: 'void *', embd: 'void *', pos: 'void *', n_seq_id: 'void *', seq_id: 'void *', logits: 'void *' });
  const f = {
    mdef: ll.func('llama_model_default_params', ModelParams, []),
    cdef: ll.func('llama_context_default_params', CtxParams, []),
    load: ll.func('llama_model_load_from_file', 'void *', ['const char *', ModelParams]),
    init: ll.func('llama_init_from_model', 'void *', ['void *', CtxParams]),
    batchOne: ll.func('llama_batch_get_one', Batch, ['int32_t *', 'int32_t']),
    decode: ll.func('llama_decode', 'int32_t', ['void *', Batch]),
    logits: ll.func('void *llama_get_logits_ith(void *ctx, int32_t i)'),
    attach: ll.func('void llama_attach_threadpool(void *ctx, void *tp, void *tpb)'),
    vocab: ll.func('const void *llama_model_get_vocab(const void *model)'),
    nVocab: ll.func('int32_t llama_vocab_n_tokens(const void *vocab)'),
    tokenize: ll.func('int32_t llama_tokenize(const void *vocab, const char *text, int32_t text_len, _Out_ int32_t *tokens, int32_t n_tokens_max, bool add_special, bool parse_special)'),
    memory: ll.func('void *llama_get_memory(void *ctx)'),
    clear: ll.func('void llama_memory_clear(void *mem, bool data)'),
  };
  const mp = f.mdef();
  mp.n_gpu_layers = 0;
  // node-llama-cpp's context: flash attention off, n_ubatch = n_batch, same threads for both
  const cp = Object.assign(f.cdef(), { n_ctx: 256, n_batch: 256, n_ubatch: 256, n_seq_max: 1, n_threads: threads, n_threads_batch: threads, flash_attn_type: 0, no_perf: true });
  // llama.cpp logs the whole load at INFO: keep warnings, then put back whoever logged before
  const logGet = ll.func('void llama_log_get(_Out_ void **cb, _Out_ void **user_data)');
  const logSet = ll.func('void llama_log_set(void *cb, void *user_data)');
  const quiet = koffi.register((level, text) => void (level === 4 && process.stderr.write(text)), koffi.pointer(koffi.proto('void bench_log(int level, const char *text, void *ud)')));
  const prevCb = [null], prevUd = [null];
  logGet(prevCb, prevUd);
  logSet(quiet, null);
  const [mdl, ctx] = (() => {
    try {
      const mdl = f.load(model, mp);
      return [mdl, f.init(mdl, cp)];
    } finally {
      logSet(prevCb[0], prevUd[0]);
    }
  })();
  if (!mdl || !ctx) throw new Error(`libllama could not load ${model}`);
  if (pool) {
    // ggml_threadpool_params (ggml.h): bool cpumask[512]; int n_threads; int prio; uint32 poll; bool strict_cpu; bool paused
    const dev = Array.from({ length: Number(g.ggml_backend_dev_count()) }, (_, i) => g.ggml_backend_dev_get(i)).find((d) => g.ggml_backend_dev_type(d) === 0);
    const newPool = g.ggml_backend_reg_get_proc_address(g.ggml_backend_dev_backend_reg(dev), 'ggml_threadpool_new');
    const params = Buffer.alloc(528);
    params.writeInt32LE(threads, 512);
    params.writeUInt32LE(50, 520); // ggml's default polling level
    const tp = koffi.call(newPool, koffi.proto('void *bench_tp_new(void *params)'), params);
    logSet(quiet, null);
    f.attach(ctx, tp, null);
    logSet(prevCb[0], prevUd[0]);
  }
  const vocab = f.vocab(mdl);
  const nVocab = f.nVocab(vocab);
  const text = Buffer.from(PROMPT);
  const prompt = new Int32Array(64);
  const n = f.tokenize(vocab, text, text.length, prompt, prompt.length, true, false);
  const argmax = () => {
    const l = new Float32Array(koffi.view(f.logits(ctx, -1), nVocab * 4));
    let best = 0;
    for (let i = 1; i < nVocab; i++) if (l[i] > l[best]) best = i;
    return best;
  };
  const one = new Int32Array(1);
  // koffi's async call runs the function in a libuv worker, as node-llama-cpp's AsyncWorkers do
  const decodeOne = worker
    ? () => new Promise((resolve, reject) => f.decode.async(ctx, f.batchOne(one, 1), (err, r) => (err ? reject(err) : resolve(r))))
    : () => f.decode(ctx, f.batchOne(one, 1));
  const run = async () => {
    f.clear(f.memory(ctx), true);
    if (f.decode(ctx, f.batchOne(prompt, n)) !== 0) throw new Error('llama_decode failed');
    const out = [argmax()];
    const [t0, c0, s0] = [performance.now(), cpuMs(), switches()];
    for (let i = 0; i < tokens; i++) {
      one[0] = out[out.length - 1];
      if ((await decodeOne()) !== 0) throw new Error('llama_decode failed');
      out.push(argmax());
    }
    return { ms: (performance.now() - t0) / tokens, cpu: (cpuMs() - c0) / tokens, sw: (switches() - s0) / tokens, first: out.slice(0, CHECK) };
  };
  await run();
  return run();
}

async function llamaServerRun(model) {
  if (!existsSync(llamaServer)) throw new Error(`llama-server not found at ${llamaServer}: build it (see bench/serve.mjs) or set LLAMA_SERVER.`);
  const port = 20000 + Math.floor(Math.random() * 20000);
  const child = spawn(llamaServer, ['-m', model, '--host', '127.0.0.1', '--port', String(port), '-t', String(threads), '-tb', String(threads), '-np', '1', '-c', '256', '-ngl', '0', '--no-webui'], { stdio: 'ignore' });
  const url = `http://127.0.0.1:${port}`;
  const cpu = () => {
    const f = readFileSync(`/proc/${child.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(f[11]) + Number(f[12])) * 1000) / Number(execFileSync('getconf', ['CLK_TCK']));
  };
  try {
    for (;;) {
      try {
        if ((await fetch(`${url}/health`)).status === 200) break;
      } catch {}
      await new Promise((r) => setTimeout(r, 200));
    }
    const request = async () => {
      const [c0, s0] = [cpu(), switches(child.pid)];
      const body = { prompt: PROMPT, n_predict: tokens + 1, temperature: 0, ignore_eos: true, return_tokens: true };
      const r = await (await fetch(`${url}/completion`, { method: 'POST', body: JSON.stringify(body) })).json();
      if (!r.timings) throw new Error(`llama-server: ${JSON.stringify(r).slice(0, 200)}`);
      // CPU and switches cover the prompt too (a few % of the request)
      return { ms: r.timings.predicted_per_token_ms, cpu: (cpu() - c0) / (tokens + 1), sw: (switches(child.pid) - s0) / (tokens + 1), first: r.tokens.slice(0, CHECK) };
    };
    await request();
    return await request();
  } finally {
    child.kill();
  }
}

const PATHS = {
  'node-llama-cpp': (m) => nodeLlamaCpp(m),
  'libllama, compute threads per decode': (m) => libllama(m, false),
  'libllama + persistent threadpool': (m) => libllama(m, true),
  'libllama + persistent threadpool, decode in a libuv worker': (m) => libllama(m, true, true),
  'llama-server': (m) => llamaServerRun(m),
};

if (args[0] === '--child') {
  const result = await PATHS[args[1]](args[2]);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}

const positional = positionals((a) => a.startsWith('--'));
const tmp = positional[0] ? undefined : await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-bench-decode-'));
process.on('exit', () => tmp && rmSync(tmp, { recursive: true, force: true }));
const modelPath = positional[0] ? path.resolve(positional[0]) : await fixtureGguf(tmp);
const modelLabel = positional[0] ? path.basename(modelPath) : FIXTURE_LABEL;

const child = (name) =>
  new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [fileURLToPath(import.meta.url), '--child', name, modelPath, '--threads', String(threads), '--tokens', String(tokens)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${name} exited with ${code}`))));
  });

const loads = [];
const runs = new Map(Object.keys(PATHS).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) {
  const order = r % 2 === 0 ? Object.keys(PATHS) : Object.keys(PATHS).reverse();
  for (const name of order) {
    loads.push(os.loadavg()[0]);
    runs.get(name).push(await child(name));
  }
}
const reference = runs.get('node-llama-cpp')[0].first.join(',');
for (const [name, list] of runs) {
  for (const x of list) if (x.first.join(',') !== reference) throw new Error(`${name} generated ${x.first} where node-llama-cpp generated ${reference}: the paths do not decode the same model`);
}

const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.max(0, Math.ceil((p / 100) * xs.length) - 1))];
const stat = (xs, d) => `${pct(xs, 50).toFixed(d)} (${Math.min(...xs).toFixed(d)}–${Math.max(...xs).toFixed(d)})`;
const rows = [...runs].map(([name, list]) => `| ${name} | ${stat(list.map((x) => x.ms), 1)} | ${stat(list.map((x) => x.cpu), 1)} | ${stat(list.map((x) => x.sw), 1)} |`);
const md = [
  `## single-stream decode paths (\`bench/decode-loop.mjs\`)`,
  ``,
  `${new Date().toISOString().slice(0, 10)} · ${modelLabel} · CPU (${os.cpus()[0]?.model ?? 'unknown CPU'}, ${os.availableParallelism()} cores, ${threads} threads, 1-min load average ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)} while measuring) · ${tokens} greedy tokens after a ${PROMPT.length}-character prompt, same first ${CHECK} tokens on every path · median (min–max) of ${rounds} rounds, a fresh process per path and round, order alternating · \`node bench/decode-loop.mjs${args.length ? ` ${args.join(' ')}` : ''}\``,
  ``,
  `| path | wall ms/token | CPU ms/token (process) | voluntary context switches/token |`,
  `| --- | ---: | ---: | ---: |`,
  ...rows,
].join('\n');
console.log(md);
