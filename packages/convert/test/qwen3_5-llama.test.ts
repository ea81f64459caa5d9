// Oracle: llama.cpp loads the converted qwen3_5 (Qwen3.5/3.6 layout) fixture with and without its MTP
// block, generates, tokenizes like HF (transformers-v5 tokenizer_config), and its next-token
// distribution matches the plain-TS reference forward on the HF files.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufReader } from '@qtk/core';
import { referenceForward } from '@qtk/engine';
import { convertCheckpoint } from '../src/index.js';
import { expectAgreement, runGguf, tokenizedFixture } from './llama-helpers.js';
import { F16_TOLERANCE, F32_TOLERANCE, MIXED_TEXT, PROMPT } from './tolerances.js';

let root: string;
let dir: string;
let hf: Awaited<ReturnType<typeof tokenizedFixture>>['hf'];
let tokens: number[];
let exactRef: Promise<Awaited<ReturnType<typeof referenceForward>>> | undefined;
/** The exact (unrounded) reference, computed once for both f32 tests. */
const exact = () => (exactRef ??= referenceForward(dir, tokens));

beforeAll(async () => {
  ({ root, dir, hf, tokens } = await tokenizedFixture({ arch: 'qwen3_5', seed: 5, tokenizerConfigStyle: 'v5' }, PROMPT));
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('qwen3_5 fixture → GGUF → llama.cpp', () => {
  it('f32 with MTP: loads as qwen35 with the MTP block, generates, tokenizes like HF, matches the reference', async () => {
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'q35-f32.gguf'), outtype: 'f32', log: () => {} });
    const g = await GgufReader.open(output);
    try {
      expect(g.get('general.architecture')).toBe('qwen35');
      expect(g.get('qwen35.block_count')).toBe(9);
      expect(g.get('qwen35.nextn_predict_layers')).toBe(1);
      expect(g.tensors.some((t) => t.name === 'blk.8.nextn.eh_proj.weight')).toBe(true);
    } finally {
      await g.close();
    }
    const ref = await exact();
    const run = await runGguf(output, tokens, ref.vocab, { generateFrom: 'The capital of France is', tokenizeTexts: [MIXED_TEXT] });
    expect(run.generated.length).toBeGreaterThan(0);
    expect(run.tokenized[0]).toEqual(hf.encode(MIXED_TEXT));
    expectAgreement('qwen3_5 f32', run.logProbs, ref, F32_TOLERANCE);
  });

  it('f16 with MTP: matches the reference run with f16-rounded matmul inputs', async () => {
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'q35-f16.gguf'), outtype: 'f16', log: () => {} });
    const ref = await referenceForward(dir, tokens, { roundMatmulInputs: 'f16' });
    const run = await runGguf(output, tokens, ref.vocab);
    expectAgreement('qwen3_5 f16', run.logProbs, ref, F16_TOLERANCE);
  });

  it('--no-mtp: 8 blocks, no nextn tensors, same distribution', async () => {
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'q35-nomtp.gguf'), outtype: 'f32', noMtp: true, log: () => {} });
    const g = await GgufReader.open(output);
    try {
      expect(g.get('qwen35.block_count')).toBe(8);
      expect(g.get('qwen35.nextn_predict_layers')).toBeUndefined();
      expect(g.tensors.filter((t) => t.name.startsWith('blk.8.'))).toEqual([]);
    } finally {
      await g.close();
    }
    const ref = await exact();
    const run = await runGguf(output, tokens, ref.vocab, { generateFrom: 'Once upon a time' });
    expect(run.generated.length).toBeGreaterThan(0);
    expectAgreement('qwen3_5 --no-mtp f32', run.logProbs, ref, F32_TOLERANCE);
  });
});
