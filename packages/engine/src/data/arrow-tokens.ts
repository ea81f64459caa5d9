// Token ids from a `qtk dataset build` split (Arrow IPC file format), read one record batch at a time
// through a file handle: the footer, then each batch on demand, so a large split never sits in memory
// as Arrow data. Rows are cut from one stream of documents laid end to end, so concatenating them
// (padding left out: document_ids -1, datasets/README.md) gives back that stream.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { DataType, RecordBatchReader, type AsyncRecordBatchFileReader, type AsyncRecordBatchStreamReader, type Data, type Field, type Schema } from 'apache-arrow';
import { QtkError, fileError } from '@qtk/core';

/** The columns read here and the Arrow types they must have (the rest of the schema is ignored). */
export const TOKEN_COLUMNS = {
  input_ids: { type: 'list<int32>', required: true },
  document_ids: { type: 'list<int32>', required: false },
} as const;

/** document_ids value that marks padding. */
export const PAD_DOCUMENT_ID = -1;

function typeName(f: Field): string {
  return String(f.type).toLowerCase().replace(/\s+/g, '');
}

function isListOfInt32(f: Field): boolean {
  if (!DataType.isList(f.type)) return false;
  const child = f.type.children[0]?.type;
  return child !== undefined && DataType.isInt(child) && child.bitWidth === 32 && child.isSigned;
}

export function checkTokenSchema(file: string, schema: Schema): void {
  for (const [name, spec] of Object.entries(TOKEN_COLUMNS)) {
    const f = schema.fields.find((x) => x.name === name);
    if (!f) {
      if (spec.required) throw fileError(file, `has no "${name}" column (columns: ${schema.fields.map((x) => x.name).join(', ') || 'none'})`, 'Pass --data a split written by `qtk dataset build` (train.arrow or eval.arrow), or its dataset folder');
      continue;
    }
    if (!isListOfInt32(f)) throw fileError(file, `column "${name}" is ${typeName(f)}, expected ${spec.type}`, 'Rebuild the dataset with `qtk dataset build`, or write that column as list<int32>');
  }
}

export interface DatasetTokens {
  tokens: number[];
  rows: number;
  batches: number;
  /** Padding tokens left out. */
  padding: number;
  /** True when reading stopped at maxTokens before the end of the file. */
  truncated: boolean;
}

/** One list column's rows in a batch: offsets into a flat Int32Array, adjusted for slicing. */
function listRows(d: Data, file: string, name: string, batch: number): { offsets: Int32Array; values: Int32Array; base: number; offset: number } {
  if (d.nullCount > 0) throw fileError(file, `record batch ${batch} has ${d.nullCount} null rows in "${name}"`, 'Rebuild the dataset with `qtk dataset build`; every row must hold its token ids');
  const child = d.children[0]!;
  return { offsets: d.valueOffsets as Int32Array, values: child.values as Int32Array, base: child.offset, offset: d.offset };
}

/** A split with no rows: `qtk dataset build` held out no files for it (few files, small --eval-fraction). */
function emptySplit(file: string): QtkError {
  const split = path.basename(file, '.arrow');
  const next = split === 'eval'
    ? 'Pass --split train to evaluate on the training split, or rebuild the dataset with a larger --eval-fraction (or more files) so that eval holds at least one file'
    : split === 'train'
      ? 'Pass --split eval, or rebuild the dataset from a repository with more files (or a smaller --eval-fraction)'
      : 'Pass --data a split that holds rows, or rebuild the dataset with `qtk dataset build`';
  return fileError(file, `the ${split} split is empty (0 rows)`, next);
}

/**
 * Concatenates every row's input_ids, skipping padding, in file order. With maxTokens, stops at the
 * first batch that brings the total to at least that many (the rest of the file is never read).
 */
export async function readDatasetTokens(file: string, opts: { maxTokens?: number } = {}): Promise<DatasetTokens> {
  const fh = await fs.open(file, 'r').catch((e: unknown) => {
    throw fileError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'Pass --data a text file, a dataset folder or a .arrow split', e);
  });
  const out: DatasetTokens = { tokens: [], rows: 0, batches: 0, padding: 0, truncated: false };
  try {
    let reader: AsyncRecordBatchFileReader | AsyncRecordBatchStreamReader;
    try {
      reader = await RecordBatchReader.from(fh as never) as AsyncRecordBatchFileReader | AsyncRecordBatchStreamReader;
      await reader.open();
    } catch (e) {
      throw fileError(file, `is not an Arrow IPC file (${(e as Error).message})`, 'Pass --data a split written by `qtk dataset build`, or a UTF-8 text file', e);
    }
    if (!reader.isFile()) throw fileError(file, 'is an Arrow stream, not an Arrow IPC file', 'Pass a split written by `qtk dataset build` (Arrow file format)');
    checkTokenSchema(file, reader.schema);
    const hasDocs = reader.schema.fields.some((f) => f.name === 'document_ids');
    for await (const batch of reader) {
      // a file with no record batches yields one placeholder batch whose list columns lack their child data
      if (batch.numRows === 0) continue;
      const b = out.batches++;
      const ids = batch.getChild('input_ids')!;
      const docs = hasDocs ? batch.getChild('document_ids')! : undefined;
      // a batch read from a file is one Data chunk per column; loop anyway
      let row = 0;
      for (let c = 0; c < ids.data.length; c++) {
        const I = listRows(ids.data[c]!, file, 'input_ids', b);
        const D = docs ? listRows(docs.data[c]!, file, 'document_ids', b) : undefined;
        for (let r = 0; r < ids.data[c]!.length; r++, row++) {
          const s = I.offsets[I.offset + r]!, e = I.offsets[I.offset + r + 1]!;
          const ds = D ? D.offsets[D.offset + r]! : 0;
          if (D && D.offsets[D.offset + r + 1]! - ds !== e - s) {
            throw fileError(file, `row ${out.rows} has ${e - s} input_ids and ${D.offsets[D.offset + r + 1]! - ds} document_ids`, 'Rebuild the dataset with `qtk dataset build`; both lists must have one entry per token');
          }
          for (let k = 0; k < e - s; k++) {
            if (D && D.values[D.base + ds + k] === PAD_DOCUMENT_ID) out.padding++;
            else out.tokens.push(I.values[I.base + s + k]!);
          }
          out.rows++;
        }
      }
      if (opts.maxTokens !== undefined && out.tokens.length >= opts.maxTokens) {
        out.truncated = true;
        break;
      }
    }
    if (out.rows === 0) throw emptySplit(file);
    return out;
  } catch (e) {
    if (e instanceof QtkError) throw e;
    throw fileError(file, `cannot be read as an Arrow IPC file (${(e as Error).message})`, 'Pass --data a split written by `qtk dataset build`, or rebuild it', e);
  } finally {
    await fh.close().catch(() => {});
  }
}
