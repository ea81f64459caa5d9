// The base model's f32 log-probabilities of every scored token (one vocabulary-long row per token) in
// a file mapped shared, read-write: on the CPU backend the scoring graph writes a window's rows straight
// into the mapping (pass 1) and reads them from it as a graph input (pass 2), so no row is copied
// through JavaScript; other backends copy between their memory and the mapping. Each window's pages
// are dropped from the process once scored (the data stays in the file), so resident memory is
// bounded by one window, not by the run.
import { BackendBuffer, type Backend } from '../ggml/backend.js';
import type { GgmlContext } from '../ggml/context.js';
import type { Ptr } from '../ggml/lib.js';
import { MappedFile } from '../ggml/mmap.js';
import type { Tensor } from '../ggml/tensor.js';

export class LogProbFile {
  /** A CPU buffer over the whole mapping (it owns no memory), made when a CPU backend first asks. */
  private buffer: BackendBuffer | undefined;
  private closed = false;

  private constructor(
    private readonly map: MappedFile,
    readonly rows: number,
    readonly nVocab: number,
    private readonly copy: boolean,
  ) {}

  /**
   * A new file of `rows` × `nVocab` f32 values at `path` (sparse until written). `copy`: copy rows to
   * and from graph memory even on a CPU backend (the other backends' way), instead of placing them.
   */
  static create(path: string, rows: number, nVocab: number, opts: { copy?: boolean } = {}): LogProbFile {
    return new LogProbFile(MappedFile.create(path, rows * nVocab * 4), rows, nVocab, opts.copy ?? false);
  }

  private check(first: number, n: number): void {
    if (!Number.isInteger(first) || !Number.isInteger(n) || first < 0 || n < 1 || first + n > this.rows) {
      throw new RangeError(`log-probability rows ${first}..${first + n - 1} outside the file's 0..${this.rows - 1}`);
    }
  }

  private at(first: number): Ptr {
    return this.map.at(first * this.nVocab * 4);
  }

  /**
   * A [vocab, n] f32 tensor of `g` for rows first.. . On a CPU backend it lies on the mapping itself
   * (`placed`): the graph reads and writes the file. Otherwise it is an ordinary graph tensor that
   * `load` fills before the graph computes, or `save` reads back after.
   */
  tensor(be: Backend, g: GgmlContext, first: number, n: number, name: string): { t: Tensor; placed: boolean } {
    this.check(first, n);
    const t = g.newTensor('F32', [this.nVocab, n], name);
    if (!be.isCpu || this.copy) return { t, placed: false };
    if (!this.buffer) {
      const ptr = be.lib.ggml_backend_cpu_buffer_from_ptr(this.map.base, this.map.size) as Ptr | null;
      if (!ptr) throw new Error(`ggml_backend_cpu_buffer_from_ptr failed for ${this.map.path}`);
      this.buffer = new BackendBuffer(be.lib, ptr);
    }
    const st = be.lib.ggml_backend_tensor_alloc(this.buffer.ptr, t.ptr, this.at(first)) as number;
    if (st !== 0) throw new Error(`ggml_backend_tensor_alloc failed (${st}) on ${this.map.path}`);
    return { t, placed: true };
  }

  /** Copies rows first.. from the file into a tensor that is not placed on it. */
  load(be: Backend, t: Tensor, first: number): void {
    const n = t.ne[1]!;
    this.check(first, n);
    be.lib.ggml_backend_tensor_set_ptr(t.ptr, this.at(first), 0, n * this.nVocab * 4);
  }

  /** Copies a tensor that is not placed on the file into rows first.. . */
  save(be: Backend, t: Tensor, first: number): void {
    const n = t.ne[1]!;
    this.check(first, n);
    be.lib.ggml_backend_tensor_get_ptr(t.ptr, this.at(first), 0, n * this.nVocab * 4);
  }

  /** Asks the kernel to read rows first.. ahead. */
  willNeed(first: number, n: number): void {
    this.check(first, n);
    this.map.willNeed(first * this.nVocab * 4, n * this.nVocab * 4);
  }

  /** Drops rows first.. from this process's memory; they stay in the file. */
  release(first: number, n: number): void {
    this.check(first, n);
    this.map.release(first * this.nVocab * 4, n * this.nVocab * 4);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer?.free();
    this.map.unmap();
  }
}
