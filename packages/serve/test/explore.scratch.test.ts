import { it } from 'vitest';
import OpenAI from 'openai';
import { startServer } from '../src/index.js';
import { buildTinyModel } from './tiny-model.js';

it('explore', async () => {
  let t = Date.now();
  const m = await buildTinyModel('qwen3_5');
  console.log('build ms', Date.now() - t);
  t = Date.now();
  const s = await startServer({ model: m.gguf, port: 0, gpu: false, parallel: 2, ctx: 512, threads: 1, log: console.log });
  console.log('start ms', Date.now() - t, s.url, s.engine.chatTemplate?.slice(0, 200));
  const client = new OpenAI({ baseURL: s.url + '/v1', apiKey: 'x' });
  t = Date.now();
  const r = await client.chat.completions.create({ model: s.modelId, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 20, temperature: 0 });
  console.log('chat ms', Date.now() - t, JSON.stringify(r));
  const r2 = await client.chat.completions.create({ model: s.modelId, messages: [{ role: 'user', content: 'Hi there' }], max_tokens: 10, temperature: 0, chat_template_kwargs: { enable_thinking: false } } as never);
  console.log(JSON.stringify(r2.choices[0]));
  const r3 = await client.chat.completions.create({ model: s.modelId, messages: [{ role: 'user', content: 'weather?' }], max_tokens: 60, temperature: 0,
    tools: [{ type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { enum: ['Paris', 'Oslo'] } }, required: ['city'] } } }], tool_choice: 'required' });
  console.log(JSON.stringify(r3.choices[0]));
  const r4 = await client.chat.completions.create({ model: s.modelId, messages: [{ role: 'user', content: 'json' }], max_tokens: 60, temperature: 0,
    response_format: { type: 'json_schema', json_schema: { name: 'x', schema: { type: 'object', properties: { ok: { type: 'boolean' }, color: { enum: ['red', 'green'] } }, required: ['ok', 'color'] } } } });
  console.log(JSON.stringify(r4.choices[0]));
  const r5 = await client.completions.create({ model: s.modelId, prompt: 'Once upon', max_tokens: 5, temperature: 0, logprobs: 2 });
  console.log(JSON.stringify(r5));
  const st = await client.chat.completions.create({ model: s.modelId, messages: [{ role: 'user', content: 'Hi' }], max_tokens: 8, temperature: 0, stream: true, logprobs: true, top_logprobs: 2 });
  for await (const c of st) console.log('chunk', JSON.stringify(c.choices[0]?.delta), c.choices[0]?.finish_reason);
  console.log(await (await fetch(s.url + '/metrics')).text());
  await s.close();
  await m.cleanup();
});
