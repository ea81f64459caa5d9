// Packing: documents are laid end to end in rows of exactly seqLen tokens; a long document continues in
// the next row. Each row carries document ids (0, 1, … in order of appearance within the row; -1 on
// padding) so a trainer can keep attention inside one file, and the paths of those documents in the
// same order. Only the last row of a split is padded (pad id, loss 0, document -1).
import type { Segment } from './render.js';

export interface PackedRow {
  inputIds: Int32Array;
  lossMask: Uint8Array;
  documentIds: Int32Array;
  /** Paths of the row's documents; document id i is paths[i]. */
  paths: string[];
}

export class Packer {
  private ids: Int32Array;
  private mask: Uint8Array;
  private docs: Int32Array;
  private paths: string[] = [];
  private fill = 0;
  rows = 0;
  tokens = 0;
  padTokens = 0;

  constructor(private readonly seqLen: number, private readonly padId: number, private readonly emit: (row: PackedRow) => void) {
    this.ids = new Int32Array(seqLen);
    this.mask = new Uint8Array(seqLen);
    this.docs = new Int32Array(seqLen);
  }

  add(path: string, segments: readonly Segment[]): void {
    let doc = -1;
    for (const seg of segments) {
      let i = 0;
      while (i < seg.ids.length) {
        if (doc < 0) {
          doc = this.paths.length;
          this.paths.push(path);
        }
        const n = Math.min(seg.ids.length - i, this.seqLen - this.fill);
        for (let k = 0; k < n; k++) this.ids[this.fill + k] = seg.ids[i + k]!;
        this.mask.fill(seg.loss, this.fill, this.fill + n);
        this.docs.fill(doc, this.fill, this.fill + n);
        this.fill += n;
        i += n;
        this.tokens += n;
        if (this.fill === this.seqLen) {
          this.flushRow();
          doc = -1; // the rest of this document starts the next row as its document 0
        }
      }
    }
  }

  /** Pads and emits the last partial row. */
  finish(): void {
    if (this.fill === 0) return;
    this.padTokens += this.seqLen - this.fill;
    this.ids.fill(this.padId, this.fill);
    this.mask.fill(0, this.fill);
    this.docs.fill(-1, this.fill);
    this.fill = this.seqLen;
    this.flushRow();
  }

  private flushRow(): void {
    this.emit({ inputIds: this.ids, lossMask: this.mask, documentIds: this.docs, paths: this.paths });
    this.rows++;
    this.ids = new Int32Array(this.seqLen);
    this.mask = new Uint8Array(this.seqLen);
    this.docs = new Int32Array(this.seqLen);
    this.paths = [];
    this.fill = 0;
  }
}
