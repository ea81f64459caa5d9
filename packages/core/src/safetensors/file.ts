// One .safetensors file read through a FileHandle: the header is parsed and validated at open, and
// tensors are read one at a time (or by byte range), never the whole file.
import { promises as fs } from 'node:fs';
import { fileError } from '../errors.js';
import { SAFETENSORS_LIMITS, type SafetensorsTensorInfo } from './format.js';
import { checkHeaderLength, parseHeader } from './header.js';

/** Node refuses single reads/writes over 2 GiB - 1 (kIoMaxLength); a 27B embedding is 2.5 GB. */
export const IO_CHUNK_BYTES = 1 << 30;

/** Reads exactly buf.length bytes at `position` (a single read may return fewer). */
export async function readFully(handle: fs.FileHandle, file: string, buf: Uint8Array, position: number): Promise<Uint8Array> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await handle.read(buf, done, Math.min(buf.length - done, IO_CHUNK_BYTES), position + done);
    if (bytesRead === 0) {
      throw fileError(file, `unexpected end of file at byte ${position + done} while reading ${buf.length} bytes at ${position}`, 'The file changed or was truncated while being read: re-download it');
    }
    done += bytesRead;
  }
  return buf;
}

export class SafetensorsFile {
  readonly path: string;
  readonly metadata: Record<string, string>;
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** Total file size in bytes. */
  readonly size: number;
  /** Absolute offset where tensor data starts (8 + header length). */
  readonly dataOffset: number;
  private handle: fs.FileHandle | undefined;

  private constructor(path: string, handle: fs.FileHandle, size: number, dataOffset: number, metadata: Record<string, string>, tensors: SafetensorsTensorInfo[]) {
    this.path = path;
    this.handle = handle;
    this.size = size;
    this.dataOffset = dataOffset;
    this.metadata = metadata;
    this.tensors = new Map(tensors.map((t) => [t.name, t]));
  }

  static async open(path: string): Promise<SafetensorsFile> {
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch (e) {
      throw fileError(path, `cannot open (${(e as Error).message})`, 'Check the path and its permissions', e);
    }
    try {
      const { size } = await handle.stat();
      const prefix = new Uint8Array(SAFETENSORS_LIMITS.lengthPrefixBytes);
      if (size >= prefix.length) await readFully(handle, path, prefix, 0);
      const n = checkHeaderLength(path, prefix, size);
      const headerBytes = await readFully(handle, path, new Uint8Array(n), prefix.length);
      const h = parseHeader(path, headerBytes, size);
      return new SafetensorsFile(path, handle, size, h.dataOffset, h.metadata, h.tensors);
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  /** Tensor names in data (file) order. */
  names(): string[] {
    return [...this.tensors.keys()];
  }

  info(name: string): SafetensorsTensorInfo {
    const t = this.tensors.get(name);
    if (t === undefined) throw fileError(this.path, `has no tensor named ${JSON.stringify(name)} (it has ${this.tensors.size} tensors)`, 'Check the tensor name; `qtk inspect` lists them');
    return t;
  }

  /** One tensor's bytes (little-endian, as stored). */
  async read(name: string): Promise<Uint8Array> {
    const t = this.info(name);
    return this.readAt(t.dataStart, t.byteLength);
  }

  /** `byteLength` bytes of one tensor starting `byteStart` bytes into it. */
  async readRange(name: string, byteStart: number, byteLength: number): Promise<Uint8Array> {
    const t = this.info(name);
    if (!Number.isSafeInteger(byteStart) || !Number.isSafeInteger(byteLength) || byteStart < 0 || byteLength < 0 || byteStart + byteLength > t.byteLength) {
      throw new RangeError(`readRange(${JSON.stringify(name)}): expected a range inside its ${t.byteLength} bytes, got start ${byteStart}, length ${byteLength}`);
    }
    return this.readAt(t.dataStart + byteStart, byteLength);
  }

  private readAt(position: number, length: number): Promise<Uint8Array> {
    if (this.handle === undefined) throw new Error(`${this.path}: expected an open file, got a read after close()`);
    return readFully(this.handle, this.path, new Uint8Array(length), position);
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
