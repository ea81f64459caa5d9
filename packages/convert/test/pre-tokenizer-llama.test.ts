// The GGUF's tokenizer.ggml.pre follows the tokenizer, not the architecture: a Qwen3.5-style Split regex
// (letters with combining marks \p{M}) becomes "qwen35", and llama.cpp then splits text with combining
// marks exactly as the HF tokenizer does — differently from the Qwen3 ("qwen2") regex.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenizerLoader } from '@lenml/tokenizers';
import { BPE_PRE_TOKENIZERS, GgufReader } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';
import { cpuLlama } from './llama-helpers.js';

let root: string;
beforeAll(async () => { root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-convert-pre-')); });
afterAll(async () => { if (root) await fs.rm(root, { recursive: true, force: true }); });

// NFC-stable on purpose: HF NFC-normalizes first, llama.cpp does not (see tolerances.ts).
const TEXT = 'ภาษาไทยง่ายนิดเดียว สวัสดีครับ, مَرْحَبًا بِكُمْ, नमस्ते (combining marks) and plain English 123';

describe('pre-tokenizer from tokenizer.json', () => {
  it('a qwen3 checkpoint carrying the Qwen3.5 regex converts with pre qwen35 and tokenizes like HF in llama.cpp', async () => {
    const { dir } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'hf'), seed: 11, layers: 1 });
    const tjPath = path.join(dir, 'tokenizer.json');
    const tj = JSON.parse(await fs.readFile(tjPath, 'utf8'));
    const qwen2Json = structuredClone(tj);
    tj.pre_tokenizer.pretokenizers[0].pattern.Regex = BPE_PRE_TOKENIZERS.find((p) => p.pre === 'qwen35')!.regex;
    await fs.writeFile(tjPath, JSON.stringify(tj));
    const { output } = await convertCheckpoint({ input: dir, output: path.join(root, 'pre.gguf'), outtype: 'f16', log: () => {} });
    const g = await GgufReader.open(output);
    expect(g.get('tokenizer.ggml.pre')).toBe('qwen35');
    await g.close();

    const tokenizerConfig = JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8'));
    const hf35 = TokenizerLoader.fromPreTrained({ tokenizerJSON: tj, tokenizerConfig });
    const hf2 = TokenizerLoader.fromPreTrained({ tokenizerJSON: qwen2Json, tokenizerConfig });
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: output, vocabOnly: true });
    try {
      const ids = [...model.tokenize(TEXT, true)].map(Number);
      expect(ids).toEqual(hf35.encode(TEXT));
      expect(ids).not.toEqual(hf2.encode(TEXT)); // the regex matters for this text
    } finally {
      await model.dispose();
    }
  });
});
