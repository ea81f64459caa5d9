// Training rows from a `qtk dataset build` split (input_ids, loss_mask, document_ids per packed row),
// cut to the run's sequence length, and the seeded order in which steps visit them. Rows are held as
// typed arrays (12 bytes a token): a repository's dataset is megabytes, not the model's size.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { RecordBatchReader, type AsyncRecordBatchFileReader, type Data } from 'apache-arrow';
import { QtkError, fileError } from '@qtk/core';
import type { TrainBatch } from './model.js';
import { mixSeed, permutation } from './rng.js';

/** Columns a training split must have (datasets/README.md). */
export const TRAIN_COLUMNS = ['input_ids', 'loss_mask', 'document_ids'] as const;

export interface TrainRows {
  file: string;
  rows: TrainBatch[];
  /** Tokens that are not padding, and of those the ones in the loss. */
  tokens: number;
  lossTokens: number;
}

function listColumn(d: Data): { offsets: Int32Array; values: ArrayLike<number>; base: number; offset: number } {
  const child = d.children[0]!;
  return { offsets: d.valueOffsets as Int32Array, values: child.values as ArrayLike<number>, base: child.offset, offset: d.offset };
}

/**
 * Reads every row of `file`, cutting rows longer than `seqLen` into pieces of at most `seqLen` tokens;
 * padding at a row's end is dropped and pieces without a loss token are left out.
 */
export async function readTrainRows(file: string, seqLen: number): Promise<TrainRows> {
  const fh = await fs.open(file, 'r').catch((e: unknown) => {
    throw fileError(file, `cannot open (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, 'Pass a dataset folder written by `qtk dataset build`, or a repository folder');
  });
  const out: TrainRows = { file, rows: [], tokens: 0, lossTokens: 0 };
  try {
    let reader: AsyncRecordBatchFileReader;
    try {
      reader = (await RecordBatchReader.from(fh as never)) as AsyncRecordBatchFileReader;
      await reader.open();
    } catch (e) {
      throw fileError(file, `is not an Arrow IPC file (${(e as Error).message})`, 'Rebuild the dataset with `qtk dataset build`', e);
    }
    for (const name of TRAIN_COLUMNS) {
      if (!reader.schema.fields.some((f) => f.name === name)) {
        throw fileError(file, `has no "${name}" column (columns: ${reader.schema.fields.map((f) => f.name).join(', ')})`, 'Rebuild the dataset with `qtk dataset build`');
      }
    }
    for await (const batch of reader) {
      if (batch.numRows === 0) continue;
      const cols = TRAIN_COLUMNS.map((n) => batch.getChild(n)!);
      for (let c = 0; c < cols[0]!.data.length; c++) {
        const [I, L, D] = cols.map((col) => listColumn(col.data[c]!)) as [ReturnType<typeof listColumn>, ReturnType<typeof listColumn>, ReturnType<typeof listColumn>];
        for (let r = 0; r < cols[0]!.data[c]!.length; r++) {
          const s = I.offsets[I.offset + r]!, e = I.offsets[I.offset + r + 1]!;
          const ls = L.offsets[L.offset + r]!, ds = D.offsets[D.offset + r]!;
          if (L.offsets[L.offset + r + 1]! - ls !== e - s || D.offsets[D.offset + r + 1]! - ds !== e - s) {
            throw fileError(file, `row ${out.rows.length} has columns of different lengths`, 'Rebuild the dataset with `qtk dataset build`; each column has one entry per token');
          }
          let n = e - s;
          while (n > 0 && D.values[D.base + ds + n - 1] === -1) n--;
          for (let p = 0; p < n; p += seqLen) {
            const len = Math.min(seqLen, n - p);
            const row: TrainBatch = {
              tokens: Int32Array.from({ length: len }, (_, k) => I.values[I.base + s + p + k]!),
              lossMask: Uint8Array.from({ length: len }, (_, k) => L.values[L.base + ls + p + k]!),
              documentIds: Int32Array.from({ length: len }, (_, k) => D.values[D.base + ds + p + k]!),
            };
            let loss = 0;
            for (let k = 1; k < len; k++) loss += row.lossMask[k]!;
            if (loss === 0) continue;
            out.rows.push(row);
            out.tokens += len;
            out.lossTokens += loss;
          }
        }
      }
    }
    return out;
  } catch (e) {
    if (e instanceof QtkError) throw e;
    throw fileError(file, `cannot be read as an Arrow IPC file (${(e as Error).message})`, 'Rebuild the dataset with `qtk dataset build`', e);
  } finally {
    await fh.close().catch(() => {});
  }
}

export function emptyTrainSplit(file: string): QtkError {
  return fileError(file, `the ${path.basename(file, '.arrow')} split holds no row with a loss token`, 'Build the dataset from a repository with more files (or a smaller --eval-fraction), then train again');
}

/**
 * Which rows each optimizer step reads. Rows are visited epoch by epoch, each epoch in its own seeded
 * permutation; step s reads the `rowsPerStep` rows at positions s·rowsPerStep… of that endless stream,
 * so the data position is a function of the step alone and a resumed run reads what the first would have.
 */
export class DataOrder {
  private cache = new Map<number, Uint32Array>();
  constructor(readonly nRows: number, readonly rowsPerStep: number, readonly seed: number) {}

  /** Steps that see every row `epochs` times (the last step may cross into a partial epoch). */
  stepsFor(epochs: number): number {
    return Math.max(1, Math.ceil((epochs * this.nRows) / this.rowsPerStep));
  }

  /** Position in the row stream before `step`: epoch and index within it. */
  position(step: number): { epoch: number; index: number } {
    const g = step * this.rowsPerStep;
    return { epoch: Math.floor(g / this.nRows), index: g % this.nRows };
  }

  rowsForStep(step: number): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.rowsPerStep; i++) {
      const g = step * this.rowsPerStep + i;
      const epoch = Math.floor(g / this.nRows);
      out.push(this.epochOrder(epoch)[g % this.nRows]!);
    }
    return out;
  }

  private epochOrder(epoch: number): Uint32Array {
    let p = this.cache.get(epoch);
    if (!p) {
      p = permutation(this.nRows, mixSeed(this.seed, 0x64617461, epoch));
      if (this.cache.size > 2) this.cache.clear();
      this.cache.set(epoch, p);
    }
    return p;
  }
}
