// qtk serve against the official openai client, on a real tiny Qwen3 model converted by @qtk/convert.
// One server (2 sequences, queue of 1, an API key) serves every test in this file; the oracle for
// generated text and probabilities is node-llama-cpp driving the same GGUF directly.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { getLlama, LlamaCompletion, LlamaLogLevel, type LlamaModel, type Token } from 'node-llama-cpp';
import { startServer, type ServerHandle } from '../src/index.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const KEY = 'test-key-123';
let tiny: TinyModel;
let server: ServerHandle;
let client: OpenAI;
let model: string;
/** node-llama-cpp's own load of the same GGUF, apart from the server. */
let oracle: LlamaModel;

beforeAll(async () => {
  tiny = await buildTinyModel('qwen3');
  server = await startServer({ model: tiny.gguf, port: 0, gpu: false, threads: 1, parallel: 2, queue: 1, ctx: 512, apiKey: KEY, bodyLimit: 64 * 1024, log: process.env.QTK_TEST_LOG ? console.error : () => {} });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
  model = server.modelId;
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  oracle = await llama.loadModel({ modelPath: tiny.gguf });
});

afterAll(async () => {
  await oracle?.dispose();
  await server?.close();
  await tiny?.cleanup();
});

/** Greedy text straight from node-llama-cpp on a fresh context: what the server must reproduce. */
async function directGreedy(m: LlamaModel, prompt: string | Token[], maxTokens: number): Promise<string> {
  const ctx = await m.createContext({ contextSize: 512, threads: 1 });
  try {
    const completion = new LlamaCompletion({ contextSequence: ctx.getSequence() });
    const tokens = typeof prompt === 'string' ? m.tokenize(prompt, true) : prompt;
    return await completion.generateCompletion(tokens, { maxTokens, temperature: 0 });
  } finally {
    await ctx.dispose();
  }
}

async function metrics(): Promise<string> {
  return (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${KEY}` } })).text();
}

function metricValue(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ').pop()) : NaN;
}

describe('qtk serve with the openai client', () => {
  it('lists the model', async () => {
    const list = await client.models.list();
    expect(list.data.map((m) => m.id)).toEqual([model]);
  });

  it('answers a chat completion with the template-rendered prompt, greedy text equal to llama.cpp direct', async () => {
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 12, temperature: 0 });
    // Qwen3's template with thinking on renders exactly this ChatML.
    const rendered = '<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n';
    expect(r.object).toBe('chat.completion');
    expect(r.usage?.prompt_tokens).toBe(oracle.tokenize(rendered, true).length);
    expect(r.usage?.completion_tokens).toBeGreaterThan(0);
    expect(r.choices[0]!.message.role).toBe('assistant');
    expect(r.choices[0]!.message.content).toBe(await directGreedy(oracle, rendered, r.usage!.completion_tokens));
  });

  it('passes chat_template_kwargs.enable_thinking=false to the template (empty think block in the prompt)', async () => {
    const on = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 1, temperature: 0 });
    const off = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 1, temperature: 0, chat_template_kwargs: { enable_thinking: false } } as never);
    const thinkBlock = oracle.tokenize('<think>\n\n</think>\n\n', true).length;
    expect(off.usage!.prompt_tokens - on.usage!.prompt_tokens).toBe(thinkBlock);
  });

  it('streams the same text as the non-streaming answer, with a usage chunk', async () => {
    const req = { model, messages: [{ role: 'user' as const, content: 'Tell me a story' }], max_tokens: 16, temperature: 0 };
    const whole = await client.chat.completions.create(req);
    const stream = await client.chat.completions.create({ ...req, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      if (c.usage) usage = c.usage;
      const ch = c.choices[0];
      if (!ch) continue;
      text += ch.delta.content ?? '';
      finish = ch.finish_reason ?? finish;
    }
    expect(chunks).toBeGreaterThan(3);
    expect(text).toBe(whole.choices[0]!.message.content);
    expect(finish).toBe(whole.choices[0]!.finish_reason);
    expect(usage).toEqual(expect.objectContaining({ completion_tokens: whole.usage!.completion_tokens }));
    // Streamed logprobs: one entry per generated token, even with a stop string holding text back.
    const withLp = await client.chat.completions.create({ ...req, stream: true, logprobs: true, top_logprobs: 1, stop: ['zzzz'] });
    let entries = 0;
    for await (const c of withLp) entries += c.choices[0]?.logprobs?.content?.length ?? 0;
    expect(entries).toBe(whole.usage!.completion_tokens);
  });

  it('completes a raw prompt, streamed and not, equal to llama.cpp direct; stop strings cut the text', async () => {
    const prompt = 'Once upon a time';
    const r = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0 });
    const direct = await directGreedy(oracle, prompt, 12);
    expect(r.choices[0]!.text).toBe(direct);
    const stream = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, stream: true });
    let streamed = '';
    for await (const c of stream) streamed += c.choices[0]?.text ?? '';
    expect(streamed).toBe(direct);
    // A stop string in the middle of the greedy text ends the answer just before it.
    const stop = direct.slice(Math.floor(direct.length / 2), Math.floor(direct.length / 2) + 3);
    const cut = await client.completions.create({ model, prompt, max_tokens: 12, temperature: 0, stop: [stop] });
    expect(cut.choices[0]!.text).toBe(direct.slice(0, direct.indexOf(stop)));
    expect(cut.choices[0]!.finish_reason).toBe('stop');
  });

  it('returns logprobs that match llama.cpp probabilities for the first token', async () => {
    const prompt = 'The quick brown fox';
    const r = await client.completions.create({ model, prompt, max_tokens: 4, temperature: 0, logprobs: 3 });
    const lp = r.choices[0]!.logprobs!;
    expect(lp.tokens!.length).toBe(r.usage!.completion_tokens);
    expect(Object.keys(lp.top_logprobs![0]!).length).toBe(3);
    // Oracle: the full next-token distribution after the prompt, from llama.cpp directly.
    const m = oracle;
    const tokens = m.tokenize(prompt, true);
    const ctx = await m.createContext({ contextSize: 256, threads: 1 });
    const res = await ctx.getSequence().controlledEvaluate([...tokens.slice(0, -1), [tokens.at(-1)!, { generateNext: { probabilities: true } }]]);
    const probs = res.at(-1)!.next!.probabilities!;
    await ctx.dispose();
    const [bestToken, bestP] = probs.entries().next().value!;
    expect(lp.tokens![0]).toBe(m.detokenize([bestToken], true));
    // node-llama-cpp normalizes in float32 over the ~152k-token vocabulary (off by ~1e-4); ratios of
    // probabilities do not depend on the normalization and hold to float32 rounding.
    expect(lp.token_logprobs![0]!).toBeCloseTo(Math.log(bestP), 3);
    const served = Object.values(lp.top_logprobs![0]!).sort((a, b) => b - a);
    const expected = [...probs.values()].slice(0, 3).map((p) => Math.log(p));
    expect(served.map((l) => l - served[0]!)).toEqual(expected.map((l) => expect.closeTo(l - expected[0]!, 4)));

    const chat = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5, temperature: 0, logprobs: true, top_logprobs: 2 });
    const content = chat.choices[0]!.logprobs!.content!;
    expect(content.length).toBe(chat.usage!.completion_tokens);
    for (const t of content) {
      expect(t.top_logprobs.length).toBe(2);
      expect(t.logprob).toBeCloseTo(t.top_logprobs[0]!.logprob, 6); // greedy picks the most likely token
      expect(t.logprob).toBeLessThanOrEqual(0);
    }
  });

  it('forces a tool call with tool_choice and returns it as tool_calls', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', description: 'Weather for a city', parameters: { type: 'object', properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] }, days: { type: 'integer', enum: [1, 2, 3] } }, required: ['city', 'days'], additionalProperties: false } } },
      { type: 'function', function: { name: 'get_time', parameters: { type: 'object', properties: { zone: { enum: ['UTC', 'CET'] } }, required: ['zone'] } } },
    ];
    for (const tool_choice of ['required', { type: 'function', function: { name: 'get_time' } }] as const) {
      const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'What is the weather in Oslo?' }], tools, tool_choice, max_tokens: 80, temperature: 0 });
      const choice = r.choices[0]!;
      expect(choice.finish_reason).toBe('tool_calls');
      const calls = choice.message.tool_calls!;
      expect(calls.length).toBe(1);
      const call = calls[0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
      const args = JSON.parse(call.function.arguments);
      if (typeof tool_choice === 'object') expect(call.function.name).toBe('get_time');
      if (call.function.name === 'get_weather') {
        expect(['Paris', 'Oslo']).toContain(args.city);
        expect([1, 2, 3]).toContain(args.days);
      } else expect(['UTC', 'CET']).toContain(args.zone);
      // The call and a tool result go back through the template on the next turn.
      const next = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: 'What is the weather in Oslo?' }, choice.message, { role: 'tool', tool_call_id: call.id, content: '{"temp": 3}' }],
        tools,
        max_tokens: 4,
        temperature: 0,
      });
      expect(next.usage!.prompt_tokens).toBeGreaterThan(r.usage!.prompt_tokens);
    }
  });

  it('constrains the answer to a JSON schema, and json_object to JSON', async () => {
    const schema = { type: 'object', properties: { ok: { type: 'boolean' }, color: { type: 'string', enum: ['red', 'green'] } }, required: ['ok', 'color'], additionalProperties: false };
    const r = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Give me JSON' }], max_tokens: 60, temperature: 0, response_format: { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } } });
    expect(r.choices[0]!.finish_reason).toBe('stop');
    const obj = JSON.parse(r.choices[0]!.message.content!);
    expect(Object.keys(obj).sort()).toEqual(['color', 'ok']);
    expect(typeof obj.ok).toBe('boolean');
    expect(['red', 'green']).toContain(obj.color);
    // greedy on the seeded model under llama.cpp's JSON grammar closes the object well inside 40 tokens
    const j = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'JSON please' }], max_tokens: 40, temperature: 0, response_format: { type: 'json_object' } });
    expect(j.choices[0]!.finish_reason).toBe('stop');
    const parsed: unknown = JSON.parse(j.choices[0]!.message.content!);
    expect(parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)).toBe(true);
  });

  it('applies logit_bias: +100 forces a token, and ids outside the vocabulary are refused', async () => {
    const hello = oracle.tokenize('Hello', false);
    expect(hello.length).toBe(1);
    const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 4, temperature: 0, logit_bias: { [String(hello[0])]: 100 } });
    expect(r.choices[0]!.text).toBe('Hello'.repeat(4));
    await expect(client.completions.create({ model, prompt: 'x', max_tokens: 1, logit_bias: { [String(server.engine.vocabularySize)]: 5 } })).rejects.toMatchObject({ status: 400, param: 'logit_bias' });
  });

  it('caps max_tokens by the context and rejects prompts that do not fit', async () => {
    const n = server.engine.contextSize;
    const prompt = Array.from({ length: n - 5 }, () => 9707);
    const r = await client.completions.create({ model, prompt, max_tokens: 1000, temperature: 0 });
    expect(r.usage!.completion_tokens).toBeLessThanOrEqual(5);
    const tooLong = Array.from({ length: n + 1 }, () => 9707);
    await expect(client.completions.create({ model, prompt: tooLong, max_tokens: 4 })).rejects.toMatchObject({ status: 400 });
  });

  it('answers bad requests with OpenAI error objects and keeps serving', async () => {
    const wrong = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'not-the-key', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const noKey = await fetch(`${server.url}/v1/models`);
    expect(noKey.status).toBe(401);
    expect(((await noKey.json()) as { error: unknown }).error).toMatchObject({ type: 'authentication_error', code: 'invalid_api_key' });
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    const unknown = client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] });
    await expect(unknown).rejects.toBeInstanceOf(OpenAI.NotFoundError);
    await expect(client.chat.completions.create({ model: 'gpt-nope', messages: [{ role: 'user', content: 'x' }] })).rejects.toMatchObject({ status: 404, code: 'model_not_found' });

    const headers = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' };
    const malformed = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body: '{"model": "x", "messages": [' });
    expect(malformed.status).toBe(400);
    const body = (await malformed.json()) as { error: unknown };
    expect(body.error).toEqual({ message: expect.any(String), type: 'invalid_request_error', param: null, code: expect.any(String) });
    await expect(client.chat.completions.create({ model, messages: [] })).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'x' }], temperature: 7 })).rejects.toMatchObject({ status: 400 });

    const big = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers, body: JSON.stringify({ model, messages: [{ role: 'user', content: 'x'.repeat(100_000) }] }) });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
    expect((await fetch(`${server.url}/nope`, { headers })).status).toBe(404);

    const ok = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'still there?' }], max_tokens: 2 });
    expect(ok.choices.length).toBe(1);
  });

  it('answers 429 with Retry-After when more requests arrive than --parallel plus the queue', async () => {
    const attempts = Array.from({ length: 6 }, (_, i) =>
      client.chat.completions
        .create({ model, messages: [{ role: 'user', content: `Write a long story number ${i}` }], max_tokens: 120, temperature: 0 })
        .withResponse()
        .then(({ response }) => ({ status: response.status, retryAfter: null as string | null }))
        .catch((e: InstanceType<typeof OpenAI.APIError>) => ({ status: e.status ?? 0, retryAfter: e.headers?.get('retry-after') ?? null })),
    );
    const results = await Promise.all(attempts);
    const statuses = results.map((r) => r.status).sort();
    // 2 sequences + 1 queued are served; the other 3 arrived while all were taken.
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(1);
    expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
    for (const r of results.filter((x) => x.status === 429)) expect(r.retryAfter).toBe('1');
  });

  it('frees the sequence when a streaming client disconnects', async () => {
    const before = metricValue(await metrics(), 'qtk_requests_cancelled_total');
    const ac = new AbortController();
    const stream = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Talk for a long time' }], max_tokens: 400, temperature: 0, stream: true }, { signal: ac.signal });
    let seen = 0;
    // The client ends the iteration quietly on its own abort; the server must notice the closed socket.
    try {
      for await (const _ of stream) if (++seen === 3) ac.abort();
    } catch {
      /* aborted */
    }
    expect(seen).toBe(3);
    let m = '';
    for (let i = 0; i < 100; i++) {
      m = await metrics();
      if (metricValue(m, 'qtk_requests_cancelled_total') === before + 1 && metricValue(m, 'llamacpp:requests_processing') === 0) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(metricValue(m, 'qtk_requests_cancelled_total')).toBe(before + 1);
    expect(metricValue(m, 'llamacpp:requests_processing')).toBe(0);
    expect(metricValue(m, 'qtk_slots_idle')).toBe(2);
    const after = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'next' }], max_tokens: 3 });
    expect(after.choices[0]!.message.role).toBe('assistant');
  });

  it('exposes Prometheus metrics for requests, errors, tokens, latency and queue depth', async () => {
    const text = await metrics();
    for (const line of text.split('\n').filter((l) => l && !l.startsWith('#'))) {
      expect(line).toMatch(/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[^}]*\})? -?[0-9.e+-]+$/);
    }
    expect(text).toMatch(/qtk_requests_total\{endpoint="\/v1\/chat\/completions",status="200"\} [1-9]/);
    expect(text).toMatch(/qtk_requests_total\{endpoint="\/v1\/models",status="401"\} [1-9]/);
    expect(text).toMatch(/qtk_requests_total\{endpoint="\/v1\/chat\/completions",status="429"\} [1-9]/);
    expect(text).toMatch(/qtk_request_duration_seconds_bucket\{endpoint="\/v1\/completions",le="\+Inf"\} [1-9]/);
    expect(metricValue(text, 'llamacpp:tokens_predicted_total')).toBeGreaterThan(50);
    expect(metricValue(text, 'llamacpp:prompt_tokens_total')).toBeGreaterThan(50);
    expect(metricValue(text, 'qtk_request_errors_total')).toBeGreaterThan(5);
    expect(text).toContain('llamacpp:requests_deferred 0');
  });
});

describe('per-request timeout', () => {
  let strict: ServerHandle;
  beforeAll(async () => {
    strict = await startServer({ model: tiny.gguf, port: 0, gpu: false, threads: 1, parallel: 1, ctx: 4096, timeoutS: 1, log: () => {} });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it('stops a generation that runs past --timeout with a timeout error, and serves the next request', async () => {
    const c = new OpenAI({ baseURL: `${strict.url}/v1`, apiKey: 'unused', maxRetries: 0 });
    const started = performance.now();
    // 4000 tokens take far longer than 1 s on this machine (and would fill the context if not stopped).
    await expect(c.completions.create({ model: strict.modelId, prompt: 'Count forever:', max_tokens: 4000, temperature: 0 })).rejects.toMatchObject({ status: 500, type: 'timeout_error', code: 'request_timeout' });
    expect(performance.now() - started).toBeLessThan(10_000);
    const text = await (await fetch(`${strict.url}/metrics`)).text();
    expect(text).toContain('qtk_requests_timed_out_total 1');
    expect(text).toContain('llamacpp:requests_processing 0');
    const ok = await c.completions.create({ model: strict.modelId, prompt: 'Hi', max_tokens: 2, temperature: 0 });
    expect(ok.choices[0]!.finish_reason).toBe('length');
  });
});
