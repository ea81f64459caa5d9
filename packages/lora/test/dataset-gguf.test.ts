// The GGUF path (llama.cpp's own tokenizer through node-llama-cpp) and the tokenizer.json path give the
// same ids, so a dataset built from either is byte-identical. The GGUF comes from our converter on a
// tiny fixture checkpoint that ships the real Qwen3 tokenizer.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { buildDataset, loadDatasetTokenizer, type DatasetTokenizer } from '../src/index.js';
import { expectedContent, makeFixtureRepo, type FixtureRepo } from './dataset-fixture.js';

let root: string;
let gguf: string;
let tokenizerJson: string;
let repo: FixtureRepo;
let fromGguf: DatasetTokenizer;
let fromJson: DatasetTokenizer;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-dataset-gguf-'));
  const { dir } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'ckpt'), layers: 1 });
  tokenizerJson = path.join(dir, 'tokenizer.json');
  gguf = (await convertCheckpoint({ input: dir, output: path.join(root, 'tiny.gguf'), outtype: 'f16', log: () => {} })).output;
  repo = await makeFixtureRepo(path.join(root, 'repo'), { git: false });
  fromGguf = await loadDatasetTokenizer(gguf);
  fromJson = await loadDatasetTokenizer(tokenizerJson);
});
afterAll(async () => {
  await fromGguf?.close();
  await fromJson?.close();
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('GGUF (llama.cpp) and tokenizer.json tokenization', () => {
  it('find the same control tokens', () => {
    expect(fromGguf.kind).toBe('gguf');
    expect(fromGguf.special).toEqual(fromJson.special);
    expect(Object.keys(fromJson.special).sort()).toEqual(['endOfText', 'fileSep', 'fimMiddle', 'fimPad', 'fimPrefix', 'fimSuffix', 'repoName']);
    expect(fromGguf.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('give identical ids on code, Unicode, whitespace runs, user-defined and control-token text', async () => {
    const texts = [
      'const x = 1;\n\n\tif (a) {\n        return b;\n    }\n',
      'def f(x):\n    """Docstring with ünïcødé, 漢字, emoji 🚀🧪 and math ∑ᵢ xᵢ²."""\n    return x ** 2  # 12345678901234567890\n',
      'literal control text: <|endoftext|> <|file_sep|> <|fim_prefix|> <|im_start|> stays text',
      'user-defined tokens are split out by both: <think>reasoning</think> <tool_call>{"a":1}</tool_call>',
      "contractions: it's we'll I'd THEY'RE  spaces   \n\n\n   trailing   ",
      '',
    ];
    for (const rel of repo.kept) texts.push(await expectedContent(repo.dir, rel));
    for (const t of texts) {
      const a = fromGguf.encode(t);
      expect(a).toEqual(fromJson.encode(t));
      expect(fromJson.decode(a)).toBe(t);
    }
  });

  it('a dataset built with the GGUF equals the one built with tokenizer.json, byte for byte', async () => {
    const common = { repo: repo.dir, name: 'demo', repoName: 'demo', seqLen: 128, evalFraction: 0.3, fimRate: 0.5, exclude: ['**/*.test.ts'] };
    const a = await buildDataset({ ...common, tokenizer: gguf, outDir: path.join(root, 'out-gguf') });
    const b = await buildDataset({ ...common, tokenizer: tokenizerJson, outDir: path.join(root, 'out-json') });
    expect(a.manifest.tokenizer.kind).toBe('gguf');
    expect(a.manifest.tokenizer.fingerprint).not.toBe(b.manifest.tokenizer.fingerprint);
    expect(a.manifest.tokens).toEqual(b.manifest.tokens);
    for (const f of ['train.arrow', 'eval.arrow']) {
      expect(Buffer.compare(await fs.readFile(path.join(a.dir, f)), await fs.readFile(path.join(b.dir, f)))).toBe(0);
    }
  });
});
