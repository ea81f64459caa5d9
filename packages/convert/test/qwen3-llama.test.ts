// Oracle: llama.cpp (node-llama-cpp 3.21.1) loads the converted qwen3 fixture, generates, tokenizes like
// the HF tokenizer, and its next-token distribution matches the plain-TS reference forward on the HF files.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { referenceForward } from '@qtk/engine';
import { convertCheckpoint } from '../src/index.js';
import { expectAgreement, runGguf, tokenizedFixture } from './llama-helpers.js';
import { F16_TOLERANCE, F32_TOLERANCE, MIXED_TEXT, PROMPT } from './tolerances.js';

let root: string;
let dir: string;
let hf: Awaited<ReturnType<typeof tokenizedFixture>>['hf'];
let tokens: number[];

beforeAll(async () => {
  ({ root, dir, hf, tokens } = await tokenizedFixture({ arch: 'qwen3', seed: 3, tokenizerConfigStyle: 'classic' }, PROMPT));
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('qwen3 fixture → GGUF → llama.cpp', () => {
  it('f32: generates, tokenizes like HF, and matches the reference distribution', async () => {
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'q3-f32.gguf'), outtype: 'f32', log: () => {} });
    const ref = await referenceForward(dir, tokens);
    const run = await runGguf(output, tokens, ref.vocab, { generateFrom: 'The capital of France is', tokenizeTexts: [MIXED_TEXT] });
    expect(run.generated.length).toBeGreaterThan(0);
    expect(run.tokenized[0]).toEqual(hf.encode(MIXED_TEXT));

    expectAgreement('qwen3 f32', run.logProbs, ref, F32_TOLERANCE);
  });

  it('f16: matches the reference run with f16-rounded matmul inputs, as llama.cpp computes', async () => {
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'q3-f16.gguf'), outtype: 'f16', log: () => {} });
    const ref = await referenceForward(dir, tokens, { roundMatmulInputs: 'f16' });
    const run = await runGguf(output, tokens, ref.vocab);
    expectAgreement('qwen3 f16', run.logProbs, ref, F16_TOLERANCE);
  });
});
