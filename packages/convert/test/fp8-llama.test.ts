// Oracle: an FP8 checkpoint (F8_E4M3 weights + 128×128 weight_scale_inv, as Qwen publishes them) is
// dequantized on the fly; llama.cpp loads the result, generates, and matches the reference forward,
// which dequantizes the same HF files independently.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerLoader } from '@lenml/tokenizers';
import { SafetensorsCheckpoint } from '@qtk/core';
import { referenceForward } from '@qtk/engine';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';
import { expectAgreement, runGguf } from './llama-helpers.js';
import { F32_TOLERANCE, PROMPT } from './tolerances.js';

let root: string;
let dir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-convert-fp8-'));
  ({ dir } = await generateFixture({ arch: 'qwen3_5', outDir: path.join(root, 'hf'), seed: 8, fp8: true }));
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('FP8 qwen3_5 fixture → GGUF → llama.cpp', () => {
  it('dequantizes F8_E4M3 blocks, loads, generates and matches the reference', async () => {
    const ck = await SafetensorsCheckpoint.open(dir);
    const fp8 = ck.names().filter((n) => ck.info(n).dtype === 'F8_E4M3');
    await ck.close();
    expect(fp8.length).toBeGreaterThan(10); // the fixture really is FP8

    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'fp8-f32.gguf'), outtype: 'f32', log: () => {} });
    const hf = TokenizerLoader.fromPreTrained({
      tokenizerJSON: JSON.parse(await fs.readFile(path.join(dir, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    });
    const tokens = hf.encode(PROMPT);
    const ref = await referenceForward(dir, tokens);
    const run = await runGguf(output, tokens, ref.vocab, { generateFrom: 'Hello' });
    expect(run.generated.length).toBeGreaterThan(0);
    expectAgreement('fp8 → f32', run.logProbs, ref, F32_TOLERANCE);
  });
});
