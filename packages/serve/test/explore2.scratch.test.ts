import { it } from 'vitest';
import { getLlama } from 'node-llama-cpp';
import { buildTinyModel } from './tiny-model.js';
import { generate, DEFAULT_SAMPLING } from '../src/generate.js';

it('explore2', async () => {
  const m = await buildTinyModel('qwen3');
  const llama = await getLlama({ gpu: false, build: 'never' });
  const model = await llama.loadModel({ modelPath: m.gguf });
  const ctx = await model.createContext({ contextSize: 512, sequences: 2, threads: 1 });
  const seq = ctx.getSequence();
  const prompt = model.tokenize('<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n', true);
  console.log(JSON.stringify(model.detokenize([63373, 28477] as never, false, [] as never)), JSON.stringify(model.detokenize([28477] as never, false, [63373] as never)));
  let t = Date.now();
  const r = await generate(model, seq, { prompt, maxTokens: 20, sampling: { ...DEFAULT_SAMPLING, temperature: 0 }, stop: [], signal: new AbortController().signal, onText: (d) => console.log('delta', JSON.stringify(d)) });
  console.log('ms', Date.now() - t, JSON.stringify(r.text), r.finishReason);
  t = Date.now();
  const r2 = await generate(model, seq, { prompt, maxTokens: 20, logprobs: 2, sampling: { ...DEFAULT_SAMPLING, temperature: 0 }, stop: ['chilly'], signal: new AbortController().signal });
  console.log('ms', Date.now() - t, JSON.stringify(r2.text), r2.finishReason, r2.cachedTokens, JSON.stringify(r2.logprobs.slice(0, 2)));
  await ctx.dispose();
  await model.dispose();
  await m.cleanup();
});
