// `--data` as a `qtk dataset build` dataset: a tiny Arrow split written here with the dataset schema
// (datasets/README.md), its ids from llama.cpp's tokenizer on a text, must give exactly the perplexity,
// KL divergence and imatrix of that text; read across several record batches; refused when its
// vocabulary is not the model's, with clear errors for what is not a dataset.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import {
  Field, Float32, Int32, Int64, List, RecordBatch, RecordBatchReader, Schema, Struct, Table, Uint8, Utf8, makeData,
  tableToIPC, vectorFromArray, type DataType,
} from 'apache-arrow';
import { readGgufFileInfo } from 'node-llama-cpp';
import { GgufReader, QtkError } from '@qtk/core';
import { evalKldMain, evalPplMain, imatrixMain, loadEvalData, readDatasetTokens, tokenizeWithLlama } from '../src/index.js';
import { fixtureGguf, type FixtureGguf } from './helpers.js';

const TEXT = Array.from({ length: 10 }, (_, i) =>
  `Section ${i + 1}: a dataset row holds token ids that a model evaluates as they are; ` +
  `function f${i}(x) { return x * ${i + 2}; } // packed rows, padded at the end of split ${i % 2 ? 'eval' : 'train'}.`,
).join('\n');
const N_CTX = 32;
const PAD_ID = 151643; // <|endoftext|>, Qwen's padding token

/** An Arrow split with the dataset schema: rows of `seqLen` ids, the last padded (document_ids -1, loss_mask 0). */
function writeSplit(file: string, ids: number[], seqLen: number, rowsPerBatch: number, idType: DataType = new Int32()): number {
  const rows: { ids: number[]; mask: number[]; docs: number[] }[] = [];
  for (let s = 0; s < ids.length; s += seqLen) {
    const body = ids.slice(s, s + seqLen);
    const pad = seqLen - body.length;
    rows.push({
      ids: [...body, ...Array(pad).fill(PAD_ID)],
      mask: [...body.map(() => 1), ...Array(pad).fill(0)],
      docs: [...body.map((_, k) => (s + k < 40 ? 0 : 1)), ...Array(pad).fill(-1)],
    });
  }
  const fields = [
    new Field('input_ids', new List(new Field('item', idType, false)), false),
    new Field('loss_mask', new List(new Field('item', new Uint8(), false)), false),
    new Field('document_ids', new List(new Field('item', new Int32(), false)), false),
    new Field('source_path', new Utf8(), false),
    new Field('split', new Utf8(), false),
  ];
  const schema = new Schema(fields);
  const list = (child: DataType, values: ArrayLike<number>, n: number, Ctor: { from(a: ArrayLike<number>): ArrayLike<number> }) =>
    makeData({
      type: new List(new Field('item', child, false)), length: n, nullCount: 0,
      valueOffsets: Int32Array.from({ length: n + 1 }, (_, i) => i * seqLen),
      child: makeData({ type: child, length: values.length, nullCount: 0, data: Ctor.from(values) } as never),
    });
  const batches: RecordBatch[] = [];
  for (let r = 0; r < rows.length; r += rowsPerBatch) {
    const b = rows.slice(r, r + rowsPerBatch);
    const idCtor = idType instanceof Int64 ? { from: (a: ArrayLike<number>) => BigInt64Array.from(Array.from(a), BigInt) as never } : idType instanceof Float32 ? Float32Array : Int32Array;
    const children = [
      list(idType, b.flatMap((x) => x.ids), b.length, idCtor),
      list(new Uint8(), b.flatMap((x) => x.mask), b.length, Uint8Array),
      list(new Int32(), b.flatMap((x) => x.docs), b.length, Int32Array),
      vectorFromArray(b.map(() => 'src/a.ts\nsrc/b.ts'), new Utf8()).data[0]!,
      vectorFromArray(b.map(() => 'eval'), new Utf8()).data[0]!,
    ];
    batches.push(new RecordBatch(schema, makeData({ type: new Struct(fields), length: b.length, nullCount: 0, children: children as never })));
  }
  writeFileSync(file, tableToIPC(new Table(batches), 'file'));
  return batches.length;
}

/** The fingerprint @qtk/lora's dataset builder records for a GGUF tokenizer (its src/dataset/tokenizer.ts). */
async function loraGgufFingerprint(gguf: string): Promise<string> {
  const info = await readGgufFileInfo(gguf, { readTensorInfo: false, logWarnings: false });
  const meta = (info.metadata as Record<string, unknown>).tokenizer;
  return 'sha256:' + createHash('sha256').update(JSON.stringify(meta, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))).digest('hex');
}

function manifest(tokenizer: { kind: string; file: string; fingerprint: string; special: Record<string, number> }) {
  return JSON.stringify({ format: 'qtk-dataset/1', name: 'tiny', seqLen: 24, tokenizer }, null, 2);
}

async function rejects(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(QtkError);
  return (e as Error).message;
}

describe('eval and imatrix over a dataset', () => {
  let f: FixtureGguf;
  let root: string, ds: string, text: string, ids: number[], evalBatches: number;
  const common = { ctx: N_CTX, threads: 1, device: 'cpu' as const, out: () => {} };

  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3', layers: 2, seed: 3 }, 'f32');
    root = path.dirname(f.gguf);
    text = path.join(root, 'text.txt');
    writeFileSync(text, TEXT);
    const t = await tokenizeWithLlama(f.gguf, TEXT);
    expect(t.bos).toBeUndefined(); // Qwen adds no BOS, so the text's ids are exactly the dataset's stream
    ids = t.tokens;
    ds = path.join(root, 'datasets', 'tiny');
    mkdirSync(ds, { recursive: true });
    // 24-token rows, 3 per batch: several batches, the last row padded
    expect(ids.length % 24).not.toBe(0);
    evalBatches = writeSplit(path.join(ds, 'eval.arrow'), ids, 24, 3);
    writeSplit(path.join(ds, 'train.arrow'), ids.slice(0, 3 * N_CTX + 5), 24, 2);
    writeFileSync(path.join(ds, 'manifest.json'), manifest({ kind: 'gguf', file: path.basename(f.gguf), fingerprint: await loraGgufFingerprint(f.gguf), special: { '<|endoftext|>': PAD_ID } }));
  }, 120_000);
  afterAll(() => f?.cleanup());

  it('reads the split batch by batch: the ids without padding, and stops early when told', async () => {
    const r = await readDatasetTokens(path.join(ds, 'eval.arrow'));
    expect(r.tokens).toEqual(ids);
    expect(r.batches).toBe(evalBatches);
    expect(evalBatches).toBeGreaterThan(3);
    expect(r.padding).toBe(r.rows * 24 - ids.length);
    // the file really holds several record batches (apache-arrow's own reader)
    const reader = await RecordBatchReader.from(readFileSync(path.join(ds, 'eval.arrow')));
    expect([...reader].length).toBe(evalBatches);
    const part = await readDatasetTokens(path.join(ds, 'eval.arrow'), { maxTokens: 100 });
    expect(part.batches).toBe(2); // 72 tokens after one batch, 144 after two
    expect(part.truncated).toBe(true);
    expect(part.tokens).toEqual(ids.slice(0, 144));
  });

  it('perplexity of the dataset (folder or .arrow) equals that of the text it was tokenized from', async () => {
    const onText = await evalPplMain({ model: f.gguf, data: text, ...common });
    const onDir = await evalPplMain({ model: f.gguf, data: ds, ...common });
    const onFile = await evalPplMain({ model: f.gguf, data: path.join(ds, 'eval.arrow'), ...common });
    console.log(`text PPL ${onText.ppl} (${onText.windows} windows), dataset ${onDir.ppl}, .arrow ${onFile.ppl}`);
    expect(onText.windows).toBe(Math.floor(ids.length / N_CTX));
    for (const r of [onDir, onFile]) {
      expect(r.windows).toBe(onText.windows);
      expect(r.tokens).toBe(onText.tokens);
      expect(r.ppl).toBe(onText.ppl);
    }
    // --split train reads train.arrow: 3 windows of its 101 tokens; --chunks limits the windows
    const train = await evalPplMain({ model: f.gguf, data: ds, split: 'train', ...common });
    expect(train.windows).toBe(3);
    const chunk = await evalPplMain({ model: f.gguf, data: ds, chunks: 2, ...common });
    expect(chunk.windows).toBe(2);
  });

  it('KL divergence and imatrix over the dataset equal those over the text', async () => {
    const kText = await evalKldMain({ base: f.gguf, model: f.gguf, data: text, ...common });
    const kDs = await evalKldMain({ base: f.gguf, model: f.gguf, data: ds, ...common });
    expect(kDs.count).toBe(kText.count);
    expect(kDs.pplBase).toBe(kText.pplBase);
    expect(kDs.meanKld).toBeLessThan(1e-9);

    const a = path.join(root, 'im-text.gguf'), b = path.join(root, 'im-ds.gguf');
    await imatrixMain({ model: f.gguf, data: text, output: a, ...common });
    await imatrixMain({ model: f.gguf, data: ds, output: b, ...common });
    const ra = await GgufReader.open(a), rb = await GgufReader.open(b);
    try {
      expect(rb.get('imatrix.datasets')).toEqual([path.join(ds, 'eval.arrow')]);
      expect(rb.tensors.map((t) => t.name)).toEqual(ra.tensors.map((t) => t.name));
      for (const t of ra.tensors) expect(Buffer.from(await rb.readTensor(t.name)).equals(Buffer.from(await ra.readTensor(t)))).toBe(true);
    } finally {
      await ra.close();
      await rb.close();
    }
  });

  it('refuses a dataset tokenized for another vocabulary', async () => {
    // another tokenizer fingerprint in the manifest
    const other = path.join(root, 'datasets', 'other');
    cpSync(ds, other, { recursive: true });
    writeFileSync(path.join(other, 'manifest.json'), manifest({ kind: 'gguf', file: 'llama-3.gguf', fingerprint: 'sha256:' + '0'.repeat(64), special: {} }));
    let m = await rejects(loadEvalData(f.gguf, 151936, { data: other }));
    expect(m).toContain(path.join(other, 'manifest.json'));
    expect(m).toContain(f.gguf);
    expect(m).toContain('llama-3.gguf');
    expect(m).toContain('sha256:' + '0'.repeat(64));
    expect(m).toContain(await loraGgufFingerprint(f.gguf));
    expect(m).toMatch(/qtk dataset build --tokenizer/);

    // built from a tokenizer.json: control-token ids must name the same tokens in the model
    writeFileSync(path.join(other, 'manifest.json'), manifest({ kind: 'tokenizer.json', file: 'tokenizer.json', fingerprint: 'sha256:x', special: { '<|endoftext|>': PAD_ID, '<|fim_prefix|>': 151659 } }));
    expect((await loadEvalData(f.gguf, 151936, { data: other })).dataset?.check).toBe('control-token ids');
    writeFileSync(path.join(other, 'manifest.json'), manifest({ kind: 'tokenizer.json', file: 'tokenizer.json', fingerprint: 'sha256:x', special: { '<|endoftext|>': 2 } }));
    m = await rejects(loadEvalData(f.gguf, 151936, { data: other }));
    expect(m).toContain('<|endoftext|> = id 2');

    // a lone .arrow split (no manifest) with an id past the model's vocabulary
    const lone = path.join(root, 'lone');
    mkdirSync(lone);
    writeSplit(path.join(lone, 'eval.arrow'), [...ids.slice(0, 70), 151936, ...ids.slice(70)], 24, 3);
    m = await rejects(evalPplMain({ model: f.gguf, data: path.join(lone, 'eval.arrow'), ...common }));
    expect(m).toContain('token 70 of the split is id 151936');
    expect(m).toContain('vocabulary of 151936');
    // the same split with a matching vocabulary is accepted on the range check alone
    writeSplit(path.join(lone, 'eval.arrow'), ids, 24, 3);
    expect((await loadEvalData(f.gguf, 151936, { data: path.join(lone, 'eval.arrow') })).dataset?.check).toBe('ids in range');
  });

  it('clear errors for a folder that is not a dataset, a missing split, wrong column types', async () => {
    const notDs = path.join(root, 'not-a-dataset');
    mkdirSync(notDs);
    expect(await rejects(loadEvalData(f.gguf, 151936, { data: notDs }))).toMatch(/without manifest\.json, so not a dataset/);

    const noTrain = path.join(root, 'datasets', 'no-train');
    cpSync(ds, noTrain, { recursive: true });
    rmSync(path.join(noTrain, 'train.arrow'));
    const m = await rejects(loadEvalData(f.gguf, 151936, { data: noTrain, split: 'train' }));
    expect(m).toContain(path.join(noTrain, 'train.arrow'));
    expect(m).toMatch(/no train split \(it has: eval\.arrow\).*--split eval/);

    const bad = path.join(root, 'bad');
    mkdirSync(bad);
    writeSplit(path.join(bad, 'i64.arrow'), ids, 24, 3, new Int64());
    expect(await rejects(readDatasetTokens(path.join(bad, 'i64.arrow')))).toMatch(/column "input_ids" is list<int64>, expected list<int32>/);
    writeSplit(path.join(bad, 'f32.arrow'), ids, 24, 3, new Float32());
    expect(await rejects(readDatasetTokens(path.join(bad, 'f32.arrow')))).toMatch(/"input_ids" is list<float32>, expected list<int32>/);
    writeFileSync(path.join(bad, 'text.arrow'), TEXT);
    expect(await rejects(readDatasetTokens(path.join(bad, 'text.arrow')))).toMatch(/text\.arrow: .*Arrow/);
    expect(await rejects(loadEvalData(f.gguf, 151936, { data: text, split: 'eval' }))).toMatch(/--split eval applies to datasets/);
  });
});
