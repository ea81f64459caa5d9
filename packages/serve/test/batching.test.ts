// Concurrent requests share one llama_decode per step: the packed decodes must give what the same
// requests give one at a time. On the hybrid qwen3_5 fixture (recurrent + attention layers), whose
// per-sequence KV streams are where llama.cpp splits unordered batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startServer, type ServerHandle } from '../src/index.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

/** Batched matmuls sum in another order than one-row ones: per-position logprobs may differ by rounding. */
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

const prompts = ['The river', 'Once upon a time in a small town', 'def add(a, b):', '1, 2, 3,'];

interface Answer {
  text: string;
  logprobs: number[];
}

async function complete(prompt: string): Promise<Answer> {
  const r = await client.completions.create({ model: server.modelId, prompt, max_tokens: 24, temperature: 0, logprobs: 1 });
  return { text: r.choices[0]!.text, logprobs: r.choices[0]!.logprobs?.token_logprobs ?? [] };
}

async function decodeCounters(): Promise<{ calls: number; tokens: number }> {
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const value = (name: string): number => Number(text.split('\n').find((l) => l.startsWith(`${name} `))?.split(' ')[1]);
  return { calls: value('qtk_decode_calls_total'), tokens: value('qtk_decode_tokens_total') };
}

describe('continuous batching', () => {
  it('gives 4 concurrent greedy requests the text and logprobs of 4 sequential ones, in packed decodes', async () => {
    const sequential: Answer[] = [];
    for (const p of prompts) sequential.push(await complete(p));
    const before = await decodeCounters();
    const concurrent = await Promise.all(prompts.map(complete));
    const after = await decodeCounters();

    for (let i = 0; i < prompts.length; i++) {
      expect(concurrent[i]!.text).toBe(sequential[i]!.text);
      expect(concurrent[i]!.logprobs).toHaveLength(sequential[i]!.logprobs.length);
      concurrent[i]!.logprobs.forEach((lp, j) => expect(Math.abs(lp - sequential[i]!.logprobs[j]!)).toBeLessThanOrEqual(LOGPROB_TOLERANCE));
    }
    // 4 × 24 generated tokens (plus prompts) in calls that each carry more than one token on average.
    const calls = after.calls - before.calls;
    const tokens = after.tokens - before.tokens;
    expect(tokens).toBeGreaterThanOrEqual(4 * 24);
    expect(tokens / calls).toBeGreaterThan(2);
  });
});
