// Arrow IPC *file* format (random access, memory-mappable by pyarrow), written one record batch at a
// time: rows are buffered until a batch holds ~2M tokens, then encoded and appended to disk, so memory
// stays bounded whatever the repository size.
import { promises as fs } from 'node:fs';
import {
  AsyncByteQueue, Field, Int32, List, RecordBatch, RecordBatchFileWriter, Schema, Struct, Uint8, Utf8, makeData,
  vectorFromArray, type Data,
} from 'apache-arrow';
import type { PackedRow } from './pack.js';

/** The columns of train.arrow / eval.arrow, in order. */
export const DATASET_COLUMNS = [
  { name: 'input_ids', type: 'list<int32>' },
  { name: 'loss_mask', type: 'list<uint8>' },
  { name: 'document_ids', type: 'list<int32>' },
  { name: 'source_path', type: 'utf8' },
  { name: 'split', type: 'utf8' },
] as const;

export function datasetSchema(): Schema {
  return new Schema([
    new Field('input_ids', new List(new Field('item', new Int32(), false)), false),
    new Field('loss_mask', new List(new Field('item', new Uint8(), false)), false),
    new Field('document_ids', new List(new Field('item', new Int32(), false)), false),
    new Field('source_path', new Utf8(), false),
    new Field('split', new Utf8(), false),
  ]);
}

/** Collects the writer's output synchronously so each batch can be awaited onto disk before the next. */
class ChunkSink extends AsyncByteQueue<Uint8Array> {
  chunks: Uint8Array[] = [];
  override write(value: Uint8Array | ArrayBufferView | ArrayBuffer): void {
    const v = value instanceof Uint8Array ? value : ArrayBuffer.isView(value) ? new Uint8Array(value.buffer, value.byteOffset, value.byteLength) : new Uint8Array(value);
    if (v.byteLength > 0) this.chunks.push(v.slice());
  }
}

export class ArrowSplitWriter {
  private readonly sink = new ChunkSink();
  private readonly writer = new RecordBatchFileWriter();
  private readonly schema = datasetSchema();
  private pending: PackedRow[] = [];
  private handle?: fs.FileHandle;
  bytes = 0;

  constructor(private readonly file: string, private readonly split: string, private readonly seqLen: number, private readonly batchRows: number) {}

  async open(): Promise<void> {
    this.handle = await fs.open(this.file, 'wx');
    this.writer.reset(this.sink as never, this.schema);
    await this.drain();
  }

  async addRow(row: PackedRow): Promise<void> {
    this.pending.push(row);
    if (this.pending.length >= this.batchRows) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    this.writer.write(this.buildBatch(this.pending));
    this.pending = [];
    await this.drain();
  }

  async close(): Promise<void> {
    await this.flush();
    this.writer.close(); // writes the footer into the sink
    await this.drain();
    await this.handle!.sync();
    await this.handle!.close();
    this.handle = undefined;
  }

  async abort(): Promise<void> {
    await this.handle?.close().catch(() => {});
    this.handle = undefined;
  }

  private async drain(): Promise<void> {
    const chunks = this.sink.chunks;
    this.sink.chunks = [];
    for (const c of chunks) {
      await this.handle!.write(c);
      this.bytes += c.byteLength;
    }
  }

  private listColumn<T extends Int32 | Uint8>(child: T, values: Int32Array | Uint8Array, rows: number): Data<List<T>> {
    const valueOffsets = new Int32Array(rows + 1);
    for (let i = 0; i <= rows; i++) valueOffsets[i] = i * this.seqLen;
    const childData = makeData({ type: child, length: values.length, nullCount: 0, data: values as never });
    return makeData({ type: new List(new Field('item', child, false)), length: rows, nullCount: 0, valueOffsets, child: childData });
  }

  private buildBatch(rows: PackedRow[]): RecordBatch {
    const n = rows.length;
    const ids = new Int32Array(n * this.seqLen);
    const mask = new Uint8Array(n * this.seqLen);
    const docs = new Int32Array(n * this.seqLen);
    rows.forEach((r, i) => {
      ids.set(r.inputIds, i * this.seqLen);
      mask.set(r.lossMask, i * this.seqLen);
      docs.set(r.documentIds, i * this.seqLen);
    });
    const paths = vectorFromArray(rows.map((r) => r.paths.join('\n')), new Utf8());
    const split = vectorFromArray(rows.map(() => this.split), new Utf8());
    const children = [
      this.listColumn(new Int32(), ids, n),
      this.listColumn(new Uint8(), mask, n),
      this.listColumn(new Int32(), docs, n),
      paths.data[0]!,
      split.data[0]!,
    ];
    const struct = makeData({ type: new Struct(this.schema.fields), length: n, nullCount: 0, children: children as never });
    return new RecordBatch(this.schema, struct);
  }
}
