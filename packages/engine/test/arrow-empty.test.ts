// An empty split (what `qtk dataset build` writes when it holds out no files) is refused with a message
// that says so and what to do, not an Arrow decoding error. Written here as the builder writes it:
// apache-arrow's file writer, the dataset schema, no record batches.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Field, Int32, List, RecordBatchFileWriter, Schema, Uint8, Utf8 } from 'apache-arrow';
import { QtkError } from '@qtk/core';
import { loadEvalData, readDatasetTokens } from '../src/index.js';

let dir: string;

async function writeEmptySplit(file: string): Promise<void> {
  const schema = new Schema([
    new Field('input_ids', new List(new Field('item', new Int32(), false)), false),
    new Field('loss_mask', new List(new Field('item', new Uint8(), false)), false),
    new Field('document_ids', new List(new Field('item', new Int32(), false)), false),
    new Field('source_path', new Utf8(), false),
    new Field('split', new Utf8(), false),
  ]);
  const w = new RecordBatchFileWriter();
  w.reset(undefined, schema);
  w.close();
  writeFileSync(file, await w.toUint8Array());
}

async function message(p: Promise<unknown>): Promise<string> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  expect(e).toBeInstanceOf(QtkError);
  return (e as Error).message;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'qtk-empty-split-'));
  await writeEmptySplit(path.join(dir, 'eval.arrow'));
  await writeEmptySplit(path.join(dir, 'train.arrow'));
  const tokenizer = { kind: 'gguf', file: 'm.gguf', fingerprint: 'sha256:0', special: {} };
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'qtk-dataset/1', name: 'repo', seqLen: 64, tokenizer }));
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('an empty dataset split', () => {
  it('says the eval split is empty and suggests --split train or a larger --eval-fraction', async () => {
    const m = await message(readDatasetTokens(path.join(dir, 'eval.arrow')));
    expect(m).toContain(path.join(dir, 'eval.arrow'));
    expect(m).toMatch(/eval split is empty \(0 rows\)/);
    expect(m).toMatch(/--split train/);
    expect(m).toMatch(/--eval-fraction/);
    expect(m).not.toMatch(/Arrow IPC|values/);
  });

  it('says so for the train split too, and through the dataset folder before any model is loaded', async () => {
    expect(await message(readDatasetTokens(path.join(dir, 'train.arrow')))).toMatch(/train split is empty \(0 rows\).*--split eval/);
    const m = await message(loadEvalData(path.join(dir, 'no-model.gguf'), 151936, { data: dir }));
    expect(m).toMatch(/eval\.arrow: the eval split is empty/);
  });
});
