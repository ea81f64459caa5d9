// Whole files against llama.cpp's own quantizer (llama_model_quantize — what the llama-quantize tool calls —
// from node-llama-cpp's prebuilt libllama): on a converted qwen35 fixture, for every preset (the i-quants and Q4_0
// with an importance matrix, Q4_K_M with and without), every tensor's type and bytes must be the same.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, ggmlRowBytes, type GgufTensorInfo } from '@qtk/core';
import { rewriteGguf } from '@qtk/fixtures/test-support';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { quantizeGguf } from '../src/quantize-gguf.js';
import { PRESETS, type PresetName } from '../src/presets.js';
import { llamaModelQuantize } from '../src/native/llama-quantize.js';
import { ggmlOrOptOut } from './ggml-or-optout.js';
import { importanceWeights } from './rows.js';

let dir: string;
let f16: string;

// The quantizers never read the vocabulary, and token_embd and output (151936 rows each) are ~90 % of
// the fixture's weights: a copy with their first rows only makes each whole-file comparison ~8× cheaper
// with every tensor kind and rule still in it (the rules look at the row length, never the row count).
const VOCAB_ROWS = 512;

async function fewVocabRows(src: string, dst: string, rows: number): Promise<void> {
  const cut = (t: GgufTensorInfo) => t.name === 'token_embd.weight' || t.name === 'output.weight';
  await rewriteGguf(src, dst, (t) => ({ ne: cut(t) ? [t.ne[0]!, rows] : [...t.ne], type: t.type }), (t, bytes) =>
    (cut(t) ? bytes.subarray(0, rows * ggmlRowBytes(t.type, t.ne[0]!)) : bytes));
}

async function diffFiles(a: string, b: string): Promise<string[]> {
  const A = await GgufReader.open(a), B = await GgufReader.open(b);
  const out: string[] = [];
  try {
    if (A.tensors.length !== B.tensors.length) out.push(`tensor count ${A.tensors.length} vs ${B.tensors.length}`);
    A.tensors.forEach((ta, i) => {
      const tb = B.tensors[i];
      if (!tb || tb.name !== ta.name) out.push(`position ${i}: ${ta.name} vs ${tb?.name}`);
    });
    for (const ta of A.tensors) {
      const tb = B.hasTensor(ta.name) ? B.tensor(ta.name) : undefined;
      if (!tb) continue;
      if (ta.type !== tb.type) { out.push(`${ta.name}: qtk ${ta.type}, llama.cpp ${tb.type}`); continue; }
      if (Buffer.compare(Buffer.from(await A.readTensor(ta)), Buffer.from(await B.readTensor(tb))) !== 0) out.push(`${ta.name} (${ta.type}): bytes differ`);
    }
    for (const k of ['general.file_type', 'general.quantization_version']) if (A.get(k) !== B.get(k)) out.push(`${k}: ${A.get(k)} vs ${B.get(k)}`);
  } finally {
    await A.close(); await B.close();
  }
  return out;
}

describe.skipIf(ggmlOrOptOut() === null)('whole files equal llama.cpp\'s quantizer', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-qoracle-'));
    // hidden 256 (k-quants apply) with GDN value dims 96 (fallbacks apply), 8 layers + MTP, small vocab rows
    const fx = await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf'), seed: 5, layers: 8, hidden: 256, heads: 4, kvHeads: 1, headDim: 64 });
    const full = path.join(dir, 'fx-F16-full.gguf');
    await convertCheckpoint({ input: fx.dir, output: full, outtype: 'f16', log: () => {} });
    f16 = path.join(dir, 'fx-F16.gguf');
    await fewVocabRows(full, f16, VOCAB_ROWS);
    await rm(full);
  }, 300_000);
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  // every preset; the i-quants and Q4_0 with an imatrix, Q4_K_M both ways
  const WITH_IMATRIX = new Set<PresetName>(['IQ4_XS', 'IQ4_NL', 'Q4_0']);
  const cases: [PresetName, boolean][] = [...(Object.keys(PRESETS) as PresetName[]).map((p): [PresetName, boolean] => [p, WITH_IMATRIX.has(p)]), ['Q4_K_M', true]];
  for (const [preset, withImatrix] of cases) {
    it(`${preset}${withImatrix ? ' with an imatrix' : ''}`, async () => {
      let imatrix: Map<string, Float32Array> | undefined;
      const r = await GgufReader.open(f16);
      if (withImatrix) {
        imatrix = new Map(r.tensors.filter((t) => t.ne.length >= 2 && t.name.endsWith('weight')).map((t, i) => [t.name, importanceWeights(t.ne[0]!, 300 + i)]));
      }
      await r.close();
      const ours = path.join(dir, `qtk-${preset}.gguf`), theirs = path.join(dir, `llama-${preset}.gguf`);
      // our side reads the same weights from an in-memory imatrix by writing nothing: pass them through a file
      let imFile: string | undefined;
      if (imatrix) {
        imFile = path.join(dir, 'im.dat');
        await writeLegacyImatrix(imFile, imatrix);
      }
      await quantizeGguf({ input: f16, output: ours, preset, imatrix: imFile, threads: 2, force: true, log: () => {} });
      expect(llamaModelQuantize({ input: f16, output: theirs, ftype: PRESETS[preset].ftype, threads: 2, imatrix })).toBe(0);
      expect(await diffFiles(ours, theirs)).toEqual([]);
    }, 120_000);
  }

  it('the comparison can fail: --pure Q4_K_M differs from llama.cpp\'s Q4_K_M exactly in the bumped tensors', async () => {
    const pure = path.join(dir, 'qtk-pure.gguf');
    await quantizeGguf({ input: f16, output: pure, preset: 'Q4_K_M', pure: true, threads: 2, force: true, log: () => {} });
    const theirs = path.join(dir, 'llama-Q4_K_M-again.gguf');
    expect(llamaModelQuantize({ input: f16, output: theirs, ftype: PRESETS.Q4_K_M.ftype, threads: 2 })).toBe(0);
    const d = await diffFiles(pure, theirs);
    expect(d.length).toBeGreaterThan(3);
    expect(d.filter((line) => !/(output|attn_qkv|attn_v|ffn_down)\.weight: qtk Q4_K, llama.cpp Q6_K/.test(line))).toEqual([]);
  }, 120_000);
});

/** Legacy .dat with ncall = 1, so the weights reach both quantizers unchanged. */
async function writeLegacyImatrix(file: string, m: Map<string, Float32Array>): Promise<void> {
  const { writeFile } = await import('node:fs/promises');
  const parts: Buffer[] = [];
  const head = Buffer.alloc(4); head.writeInt32LE(m.size); parts.push(head);
  for (const [name, v] of m) {
    const nb = Buffer.from(name);
    const b = Buffer.alloc(12 + nb.length);
    b.writeInt32LE(nb.length, 0); nb.copy(b, 4); b.writeInt32LE(1, 4 + nb.length); b.writeInt32LE(v.length, 8 + nb.length);
    parts.push(b, Buffer.from(v.buffer, v.byteOffset, v.byteLength));
  }
  await writeFile(file, Buffer.concat(parts));
}
