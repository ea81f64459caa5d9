// Qwen3.5/3.6: a hybrid qwen3_5 fixture carrying the Qwen3.5 chat template (test/fixtures, as published
// with Qwen3.5-4B): thinking opened by the template goes to reasoning_content, enable_thinking=false
// gives plain content, and tool calls use the template's <function=…><parameter=…> XML.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import OpenAI from 'openai';
import { startServer, type ServerHandle } from '../src/index.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let tiny: TinyModel;
let server: ServerHandle;
let client: OpenAI;

beforeAll(async () => {
  const chatTemplate = await fs.readFile(path.join(here, 'fixtures/qwen3.5-chat-template.jinja'), 'utf8');
  tiny = await buildTinyModel('qwen3_5', { chatTemplate });
  server = await startServer({ model: tiny.gguf, port: 0, gpu: false, threads: 1, parallel: 1, ctx: 1024, log: () => {} });
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

afterAll(async () => {
  await server?.close();
  await tiny?.cleanup();
});

describe('Qwen3.5 chat template', () => {
  it('puts text generated inside the template-opened <think> into reasoning_content', async () => {
    const messages = [{ role: 'user' as const, content: 'Hello' }];
    const r = await client.chat.completions.create({ model: server.modelId, messages, max_tokens: 8, temperature: 0 });
    const msg = r.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    // The random fixture never closes </think> within 8 tokens: everything is reasoning.
    expect(msg.reasoning_content?.length).toBeGreaterThan(0);
    expect(msg.content).toBe('');
    const stream = await client.chat.completions.create({ model: server.modelId, messages, max_tokens: 8, temperature: 0, stream: true });
    let reasoning = '';
    for await (const c of stream) reasoning += (c.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    expect(reasoning).toBe(msg.reasoning_content);

    const off = await client.chat.completions.create({ model: server.modelId, messages, max_tokens: 8, temperature: 0, chat_template_kwargs: { enable_thinking: false } } as never);
    const offMsg = (off as OpenAI.ChatCompletion).choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
    expect(offMsg.reasoning_content).toBeUndefined();
    expect(offMsg.content!.length).toBeGreaterThan(0);
  });

  it('forces a tool call in the XML format and reads it back with typed arguments', async () => {
    const tools: OpenAI.ChatCompletionTool[] = [
      {
        type: 'function',
        function: {
          name: 'book_table',
          parameters: {
            type: 'object',
            properties: { city: { type: 'string', enum: ['Paris', 'Oslo'] }, people: { type: 'integer', enum: [2, 4] }, outdoor: { type: 'boolean' } },
            required: ['city', 'people', 'outdoor'],
          },
        },
      },
    ];
    const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Book a table' }];
    const r = await client.chat.completions.create({ model: server.modelId, messages, tools, tool_choice: 'required', max_tokens: 300, temperature: 0 });
    const choice = r.choices[0]!;
    expect(choice.finish_reason).toBe('tool_calls');
    const call = choice.message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.function.name).toBe('book_table');
    const args = JSON.parse(call.function.arguments);
    expect(['Paris', 'Oslo']).toContain(args.city);
    expect([2, 4]).toContain(args.people);
    expect(typeof args.outdoor).toBe('boolean');
    const next = await client.chat.completions.create({
      model: server.modelId,
      messages: [...messages, choice.message, { role: 'tool', tool_call_id: call.id, content: 'booked' }],
      tools,
      max_tokens: 2,
      temperature: 0,
    });
    expect(next.usage!.prompt_tokens).toBeGreaterThan(r.usage!.prompt_tokens);
  });
});
