// A read-only view of a whole file in this process's address space (libc mmap through koffi), so CPU
// tensors can live on the page cache as llama.cpp's loader keeps them: no copy, pages shared with
// every other process that maps the same file, and nothing resident until a page is touched.
import { closeSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import koffi from 'koffi';
import { QtkError } from '@qtk/core';
import type { Ptr } from './lib.js';

/** <sys/mman.h> on Linux (x86-64 and arm64 share these values). */
const MMAN = {
  PROT_READ: 1,
  PROT_WRITE: 2,
  MAP_SHARED: 1,
  MAP_POPULATE: 0x8000,
  MADV_WILLNEED: 3,
  MADV_DONTNEED: 4,
} as const;
const MAP_FAILED = 0xffff_ffff_ffff_ffffn;
const PAGE = 4096;

type Fn = ReturnType<ReturnType<typeof koffi.load>['func']>;
let libc: { mmap: Fn; munmap: Fn; madvise: Fn } | undefined;
function c() {
  if (!libc) {
    const lib = koffi.load('libc.so.6');
    libc = {
      mmap: lib.func('void *mmap(void *addr, size_t length, int prot, int flags, int fd, int64_t offset)'),
      munmap: lib.func('int munmap(void *addr, size_t length)'),
      madvise: lib.func('int madvise(void *addr, size_t length, int advice)'),
    };
  }
  return libc;
}

export interface MapOptions {
  /** Read the whole file in while mapping (MAP_POPULATE), as llama.cpp's loader does by default. */
  populate?: boolean;
}

export class MappedFile {
  private unmapped = false;
  private constructor(
    readonly path: string,
    readonly base: Ptr,
    readonly size: number,
  ) {}

  /**
   * Maps `path` read-only and shared, as llama.cpp does: the pages are the page cache's. Writing
   * into the mapping faults (ggml would crash), so tensors placed on it are for reading only.
   */
  static open(path: string, opts: MapOptions = {}): MappedFile {
    const fd = openSync(path, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size === 0) throw new QtkError(`${path}: the file is empty. Pass a GGUF model.`, { file: path });
      const flags = MMAN.MAP_SHARED | (opts.populate ? MMAN.MAP_POPULATE : 0);
      const addr = BigInt(c().mmap(null, size, MMAN.PROT_READ, flags, fd, 0) as Ptr);
      if (addr === MAP_FAILED || addr === 0n) throw new QtkError(`${path}: mmap of ${size} bytes failed (address space or memory limits?). Run with fewer processes or more memory.`, { file: path });
      return new MappedFile(path, addr, size);
    } finally {
      // the mapping keeps its own reference to the file
      closeSync(fd);
    }
  }

  /**
   * Creates `path` (replacing it) with `size` bytes, all zero and not yet on disk (a sparse file), and
   * maps it read-write and shared: what is written into the mapping is the file's content.
   */
  static create(path: string, size: number): MappedFile {
    if (!Number.isSafeInteger(size) || size <= 0) throw new RangeError(`${path}: cannot map ${size} bytes`);
    const fd = openSync(path, 'w+');
    try {
      ftruncateSync(fd, size);
      const addr = BigInt(c().mmap(null, size, MMAN.PROT_READ | MMAN.PROT_WRITE, MMAN.MAP_SHARED, fd, 0) as Ptr);
      if (addr === MAP_FAILED || addr === 0n) throw new QtkError(`${path}: mmap of ${size} bytes failed (address space or memory limits?). Run with fewer processes or more memory.`, { file: path });
      return new MappedFile(path, addr, size);
    } finally {
      closeSync(fd);
    }
  }

  /** Address of byte `offset` of the file. */
  at(offset: number): Ptr {
    if (offset < 0 || offset > this.size) throw new RangeError(`${this.path}: offset ${offset} outside the ${this.size}-byte mapping`);
    return this.base + BigInt(offset);
  }

  private advise(offset: number, length: number, advice: number, inner: boolean): void {
    // whole pages only: inner shrinks to the pages the range covers completely (others may hold neighbours)
    const start = inner ? Math.ceil(offset / PAGE) * PAGE : Math.floor(offset / PAGE) * PAGE;
    const end = inner ? Math.floor((offset + length) / PAGE) * PAGE : Math.min(this.size, offset + length);
    if (end > start) c().madvise(this.base + BigInt(start), end - start, advice);
  }

  /** Asks the kernel to read a range ahead (MADV_WILLNEED); returns at once. */
  willNeed(offset: number, length: number): void {
    this.advise(offset, length, MMAN.MADV_WILLNEED, false);
  }

  /**
   * Drops the pages wholly inside a range from this process's memory (it was copied elsewhere, or it is
   * a shared writable mapping whose writes stay in the file); read again, they refault from the file.
   */
  release(offset: number, length: number): void {
    this.advise(offset, length, MMAN.MADV_DONTNEED, true);
  }

  unmap(): void {
    if (this.unmapped) return;
    this.unmapped = true;
    c().munmap(this.base, this.size);
  }
}
