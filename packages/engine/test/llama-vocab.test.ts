// The text tokenizer called straight in libllama gives the ids node-llama-cpp's tokenizer gives (its
// vocabulary-only model, BOS when the vocabulary asks for it), special-token text kept literal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { llamaTokenize } from '../src/index.js';
import { fixtureGguf, type FixtureGguf } from './helpers.js';
import { cpuLlama } from '@qtk/fixtures/llama-oracle';

const TEXT = 'Größe 42 — naïve “quotes”, tabs\tand\nnewlines; <|im_start|>user\n日本語のテキスト 🙂 fn main() { return x ** 2; }\n';

describe('llamaTokenize', () => {
  let f: FixtureGguf;
  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3', layers: 1 }, 'f32');
  });
  afterAll(() => f?.cleanup());

  it('equals node-llama-cpp\'s tokenization of the same GGUF', async () => {
    const model = await (await cpuLlama()).loadModel({ modelPath: f.gguf, vocabOnly: true });
    try {
      const body = Array.from(model.tokenize(TEXT, false), Number);
      const bos = model.tokens.shouldPrependBosToken && model.tokens.bos !== null ? Number(model.tokens.bos) : undefined;
      const got = llamaTokenize(f.gguf, TEXT);
      expect(got.bos).toBe(bos);
      expect(got.tokens).toEqual(bos !== undefined ? [bos, ...body] : body);
      expect(body.length).toBeGreaterThan(20);
    } finally {
      await model.dispose();
    }
  });
});
