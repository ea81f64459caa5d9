// LoRA adapters in qtk serve: a seeded adapter written with the GGUF writer changes greedy outputs;
// setting its scale to 0 at run time (POST /lora-adapters) gives back the base model's outputs exactly,
// and per-request `lora` switches between the two, also for concurrent requests.
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { getLlama, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp';
import { startServer, type ServerHandle } from '../src/index.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';
import { writeTinyLora } from './tiny-lora.js';

let tiny: TinyModel;
let server: ServerHandle;
let client: OpenAI;
let adapter: string;
const PROMPT = 'Once upon a time';
const N = 16;
let baseText: string;

async function complete(extra: Record<string, unknown> = {}): Promise<string> {
  const r = await client.completions.create({ model: server.modelId, prompt: PROMPT, max_tokens: N, temperature: 0, seed: 42, ...extra } as never);
  return (r as OpenAI.Completion).choices[0]!.text;
}

async function lora(method: 'GET' | 'POST', body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${server.url}/lora-adapters`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

beforeAll(async () => {
  tiny = await buildTinyModel('qwen3');
  adapter = path.join(tiny.dir, 'adapter.gguf');
  await writeTinyLora(tiny.gguf, adapter);
  server = await startServer({ model: tiny.gguf, lora: [{ path: adapter, scale: 1 }], port: 0, gpu: false, threads: 1, parallel: 2, ctx: 256, log: () => {} });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
  // Oracle: the same weights through node-llama-cpp, on a context that never had an adapter.
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
  const base = await llama.loadModel({ modelPath: tiny.gguf });
  const ctx = await base.createContext({ contextSize: 256, threads: 1 });
  baseText = await new LlamaCompletion({ contextSequence: ctx.getSequence() }).generateCompletion(PROMPT, { maxTokens: N, temperature: 0 });
  await ctx.dispose();
  await base.dispose();
});

afterAll(async () => {
  await server?.close();
  await tiny?.cleanup();
});

describe('LoRA adapters', () => {
  let loraText: string;

  it('lists the adapter loaded with --lora', async () => {
    expect(await lora('GET')).toEqual({ status: 200, json: [{ id: 0, path: adapter, scale: 1 }] });
  });

  it('changes greedy outputs', async () => {
    loraText = await complete();
    expect(baseText.length).toBeGreaterThan(0);
    expect(loraText).not.toBe(baseText);
    expect(await complete()).toBe(loraText); // deterministic
  });

  it('restores the base outputs exactly once its scale is set to 0 at run time', async () => {
    expect(await lora('POST', [{ id: 0, scale: 0 }])).toEqual({ status: 200, json: { success: true } });
    expect((await lora('GET')).json).toEqual([{ id: 0, path: adapter, scale: 0 }]);
    expect(await complete()).toBe(baseText);
  });

  it('applies per-request scales, without mixing concurrent requests', async () => {
    expect(await complete({ lora: [{ id: 0, scale: 1 }] })).toBe(loraText);
    expect(await complete()).toBe(baseText);
    const [a, b, c] = await Promise.all([complete({ lora: [{ id: 0, scale: 1 }] }), complete(), complete({ lora: [{ id: 0, scale: 1 }] })]);
    expect([a, b, c]).toEqual([loraText, baseText, loraText]);
  });

  it('rejects unknown adapter ids', async () => {
    expect((await lora('POST', [{ id: 3, scale: 1 }])).status).toBe(400);
    await expect(complete({ lora: [{ id: 7, scale: 1 }] })).rejects.toMatchObject({ status: 400 });
    expect((await lora('POST', { id: 0 })).status).toBe(400);
  });
});
