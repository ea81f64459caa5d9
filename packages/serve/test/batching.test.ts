// Concurrent requests share one llama_decode per step: the packed decodes must give what the same
// requests give one at a time. On the hybrid qwen3_5 fixture (recurrent + attention layers), whose
// per-sequence KV streams are where llama.cpp splits unordered batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startServer, type ServerHandle } from '../src/index.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

/** Batched matmuls sum in another order than one-row ones (ggml picks other kernels for several rows), so
 *  per-position logprobs may differ by rounding, and where the top two tokens are that close, greedy may pick
 *  the other one: from there on the texts differ legitimately. */
const LOGPROB_TOLERANCE = 1e-3;

let tiny: TinyModel;
let server: ServerHandle;
let client: OpenAI;

beforeAll(async () => {
  tiny = await buildTinyModel('qwen3_5');
  server = await startServer({ model: tiny.gguf, port: 0, gpu: false, threads: 1, parallel: 4, ctx: 256, log: () => {} });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  await tiny?.cleanup();
});

const prompts = ['The river', 'Once upon a time in a small town', 'def add(a, b):', 'Count: 1, 2, 3,'];

interface Answer {
  tokens: number[];
  logprobs: number[];
  /** Per position: the two most likely token ids and their logprobs. */
  top: Map<number, number>[];
}

/** Token ids (`id`, as llama-server sends them), since different tokens can share one text. */
type WithId<T> = T & { id: number };

async function complete(prompt: string): Promise<Answer> {
  const r = await client.chat.completions.create({ model: server.modelId, messages: [{ role: 'user', content: prompt }], max_tokens: 16, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = (r.choices[0]!.logprobs?.content ?? []) as WithId<OpenAI.ChatCompletionTokenLogprob>[];
  return {
    tokens: content.map((c) => c.id),
    logprobs: content.map((c) => c.logprob),
    top: content.map((c) => new Map((c.top_logprobs as WithId<OpenAI.ChatCompletionTokenLogprob.TopLogprob>[]).map((t) => [t.id, t.logprob]))),
  };
}

/** Equal up to rounding: the same tokens with logprobs within the tolerance, except that at a near tie
 *  (the other run's token within the tolerance of the chosen one) the rest may differ. */
function expectSameUpToRounding(batched: Answer, alone: Answer): void {
  expect(batched.tokens.length).toBeGreaterThan(0);
  for (let j = 0; j < Math.min(batched.tokens.length, alone.tokens.length); j++) {
    expect(Math.abs(batched.logprobs[j]! - alone.logprobs[j]!)).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
    if (batched.tokens[j] !== alone.tokens[j]) {
      const other = batched.top[j]!.get(alone.tokens[j]!);
      expect(other).toBeDefined();
      expect(batched.logprobs[j]! - other!).toBeLessThanOrEqual(LOGPROB_TOLERANCE);
      return;
    }
  }
  expect(batched.tokens).toEqual(alone.tokens);
}

async function decodeCounters(): Promise<{ calls: number; tokens: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name: string): number => Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
  return { calls: value('qtk_decode_calls_total'), tokens: value('qtk_decode_tokens_total') };
}

describe('continuous batching', () => {
  it('gives 4 concurrent greedy requests the tokens and logprobs of 4 sequential ones up to rounding, in packed decodes', async () => {
    const sequential: Answer[] = [];
    for (const p of prompts) sequential.push(await complete(p));
    const before = await decodeCounters();
    const concurrent = await Promise.all(prompts.map(complete));
    const after = await decodeCounters();

    for (let i = 0; i < prompts.length; i++) expectSameUpToRounding(concurrent[i]!, sequential[i]!);
    // 4 × 16 generated tokens (plus prompts) in calls that carry more than 3 tokens on average (measured ≈ 2 when sequences fall out of step).
    const calls = after.calls - before.calls;
    const tokens = after.tokens - before.tokens;
    expect(tokens).toBeGreaterThanOrEqual(4 * 16);
    expect(tokens / calls).toBeGreaterThan(3);
  });

  it('reports in /metrics the seconds spent inside llama_decode and in the steps around it', async () => {
    const read = async (): Promise<Map<string, number>> => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      return new Map(text.split('\n').filter((l) => l.startsWith('qtk_')).map((l) => [l.split(' ')[0]!, Number(l.split(' ')[1])]));
    };
    const before = await read();
    await complete('A short one');
    const after = await read();
    const delta = (name: string): number => after.get(name)! - before.get(name)!;
    expect(delta('qtk_decode_seconds_total')).toBeGreaterThan(0);
    expect(delta('qtk_step_seconds_total')).toBeGreaterThan(0);
    // the prompt end of this hybrid model saves its recurrent state once
    expect(delta('qtk_checkpoint_seconds_total')).toBeGreaterThan(0);
  });

  it('reuses the prompt of the previous turn on the same sequence (a checkpoint on this hybrid model), with the text of a fresh sequence', async () => {
    const first = [{ role: 'user' as const, content: 'Tell me about rivers.' }];
    const turn1 = await client.chat.completions.create({ model: server.modelId, messages: first, max_tokens: 6, temperature: 0 });
    const messages = [...first, { role: 'assistant' as const, content: turn1.choices[0]!.message.content ?? '' }, { role: 'user' as const, content: 'And lakes?' }];
    // Sent together: one lands on the sequence holding turn 1, the other on a sequence holding none of it.
    const both = await Promise.all([0, 1].map(() => client.chat.completions.create({ model: server.modelId, messages, max_tokens: 8, temperature: 0 })));
    const cached = both.map((r) => r.usage?.prompt_tokens_details?.cached_tokens ?? 0).sort((a, b) => a - b);
    expect(cached[0]).toBe(0);
    expect(cached[1]).toBeGreaterThanOrEqual(turn1.usage!.prompt_tokens - 1);
    expect(both[1]!.choices[0]!.message.content).toBe(both[0]!.choices[0]!.message.content);
  });
});
