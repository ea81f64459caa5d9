// GGUF writer as a state machine: metadata → tensor infos → tensor data (in info order) → finish.
// Streams: only the header is held in memory; tensor data goes to disk chunk by chunk.
// Written atomically (temp file + rename), so a failed run leaves neither a temp file nor a half file.
import * as nodePath from 'node:path';
import { openAtomic, type AtomicFile } from '../atomic-file.js';
import { QtkError, fileError } from '../errors.js';
import { GGML_TYPES, ggmlTensorBytes, type GgmlTypeName } from '../ggml-types.js';
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY_ALIGNMENT,
  GGUF_VALUE_TYPES,
  GGUF_VERSION,
  type GgufKV,
  type GgufScalar,
  type GgufValueTypeName,
} from './constants.js';
import { checkValue, encodeArrayKV, encodeScalarKV, encodeString, type GgufStringValue } from './encode.js';
import { alignUp } from './reader.js';

export interface GgufWriterOptions {
  overwrite?: boolean;
  /** Data alignment; when given, written as general.alignment (UINT32). Default 32. */
  alignment?: number;
}

type State = 'metadata' | 'tensor infos' | 'tensor data' | 'finished' | 'aborted';

interface PendingTensor {
  name: string;
  ne: number[];
  type: GgmlTypeName;
  byteLength: number;
  offset: number;
}

// fs writes move at most 2 GiB per call.
const MAX_WRITE = 1024 * 1024 * 1024;
/** Small chunks (a row at a time, padding) are gathered into one buffer of this size per write. */
const COALESCE_BYTES = 4 << 20;

/**
 * Usage: create → add*()/addArray() → addTensorInfo() for every tensor → writeTensorData() (awaited,
 * in info order, any chunking) → finish(). On any error call abort(): it removes the temp file
 * (I/O errors abort by themselves).
 */
export class GgufWriter {
  private state: State = 'metadata';
  private readonly kvBufs: Buffer[] = [];
  private readonly keys = new Set<string>();
  private readonly infos: PendingTensor[] = [];
  private readonly infoIndex = new Map<string, number>();
  private dataSize = 0;
  private alignmentValue: number;
  private pos = 0;
  private dataStart = 0;
  private cur = 0;
  private curWritten = 0;
  private busy = false;
  private pending: Buffer | undefined;
  private pendingLen = 0;

  private constructor(
    readonly path: string,
    private readonly file: AtomicFile,
    alignment: number | undefined,
  ) {
    this.alignmentValue = alignment ?? GGUF_DEFAULT_ALIGNMENT;
  }

  static async create(path: string, opts: GgufWriterOptions = {}): Promise<GgufWriter> {
    if (opts.alignment !== undefined) checkAlignment(path, opts.alignment);
    const file = await openAtomic(path, { overwrite: opts.overwrite });
    const w = new GgufWriter(path, file, opts.alignment);
    if (opts.alignment !== undefined) w.addUint32(GGUF_KEY_ALIGNMENT, opts.alignment);
    return w;
  }

  get alignment(): number {
    return this.alignmentValue;
  }

  /** Tensor infos added so far (offsets relative to the data section). */
  get tensorInfos(): readonly Readonly<PendingTensor>[] {
    return this.infos;
  }

  /** Size of the finished file, known once all tensor infos are added. */
  get plannedFileSize(): number {
    return this.headerSize() + this.dataSize;
  }

  private expect(allowed: State[], got: string): void {
    if (!allowed.includes(this.state)) {
      const next =
        this.state === 'metadata' ? 'metadata, tensor infos or finish()'
        : this.state === 'tensor infos' ? 'tensor infos or tensor data'
        : this.state === 'tensor data' ? `tensor data for '${this.infos[this.cur]?.name ?? '(none left)'}' or finish()`
        : 'nothing (the writer is ' + this.state + ')';
      throw new Error(`GgufWriter ${this.path}: expected ${next}, got ${got}`);
    }
  }

  private checkKey(key: string): void {
    if (typeof key !== 'string' || key.length === 0) throw new Error(`GgufWriter ${this.path}: metadata key must be a non-empty string, got ${JSON.stringify(key)}`);
    if (this.keys.has(key)) throw new Error(`GgufWriter ${this.path}: duplicate metadata key '${key}'`);
  }

  /**
   * Adds a scalar KV stored exactly as `type` (a UINT32 key is written as UINT32); range-checked.
   * A STRING may be given as raw bytes (Uint8Array) to copy a string that is not valid UTF-8.
   */
  add(key: string, type: GgufValueTypeName, value: GgufScalar | Uint8Array): void {
    this.expect(['metadata'], `metadata key '${key}' (all metadata must come before the first tensor info)`);
    this.checkKey(key);
    if (!(type in GGUF_VALUE_TYPES)) throw new Error(`GgufWriter ${this.path}: key '${key}': unknown GGUF value type ${String(type)}`);
    const problem = checkValue(type, value);
    if (problem) throw new Error(`GgufWriter ${this.path}: key '${key}': ${problem}`);
    if (key === GGUF_KEY_ALIGNMENT) {
      if (type !== 'UINT32') throw new Error(`GgufWriter ${this.path}: '${GGUF_KEY_ALIGNMENT}' must be UINT32, got ${type}`);
      checkAlignment(this.path, Number(value));
      this.alignmentValue = Number(value);
    }
    this.kvBufs.push(encodeScalarKV(key, type, value));
    this.keys.add(key);
  }

  /** Adds an array KV of `elemType` elements; typed arrays (Float32Array, Int32Array) are copied directly. */
  addArray(key: string, elemType: GgufValueTypeName, values: readonly (GgufScalar | Uint8Array)[] | ArrayLike<number>): void {
    this.expect(['metadata'], `metadata key '${key}' (all metadata must come before the first tensor info)`);
    this.checkKey(key);
    if (elemType === 'ARRAY') throw new Error(`GgufWriter ${this.path}: key '${key}': arrays of arrays are not allowed in GGUF`);
    if (!(elemType in GGUF_VALUE_TYPES)) throw new Error(`GgufWriter ${this.path}: key '${key}': unknown GGUF value type ${String(elemType)}`);
    if (key === GGUF_KEY_ALIGNMENT) throw new Error(`GgufWriter ${this.path}: '${GGUF_KEY_ALIGNMENT}' must be a UINT32 scalar`);
    const typedFast = (elemType === 'FLOAT32' && values instanceof Float32Array) || (elemType === 'INT32' && values instanceof Int32Array);
    if (!typedFast) {
      for (let i = 0; i < values.length; i++) {
        const problem = checkValue(elemType, values[i]);
        if (problem) throw new Error(`GgufWriter ${this.path}: key '${key}' element ${i}: ${problem}`);
      }
    }
    this.kvBufs.push(encodeArrayKV(key, elemType, values as ArrayLike<GgufScalar | GgufStringValue>));
    this.keys.add(key);
  }

  /** Copies a KV as read by GgufReader: same type, same value, same bytes (see GgufKV.rawStrings). */
  addKV(kv: GgufKV): void {
    const raw = kv.rawStrings;
    if (kv.type === 'ARRAY') {
      let values: readonly (GgufScalar | Uint8Array)[] = kv.value as GgufScalar[];
      if (raw && raw.size > 0) {
        const copy: (GgufScalar | Uint8Array)[] = [...values];
        for (const [i, bytes] of raw) copy[i] = bytes;
        values = copy;
      }
      this.addArray(kv.key, kv.elemType!, values);
    } else {
      this.add(kv.key, kv.type, raw?.get(0) ?? (kv.value as GgufScalar));
    }
  }

  addString(key: string, v: string): void { this.add(key, 'STRING', v); }
  addUint32(key: string, v: number): void { this.add(key, 'UINT32', v); }
  addInt32(key: string, v: number): void { this.add(key, 'INT32', v); }
  addFloat32(key: string, v: number): void { this.add(key, 'FLOAT32', v); }
  addFloat64(key: string, v: number): void { this.add(key, 'FLOAT64', v); }
  addBool(key: string, v: boolean): void { this.add(key, 'BOOL', v); }
  addUint64(key: string, v: bigint | number): void { this.add(key, 'UINT64', v); }
  addInt64(key: string, v: bigint | number): void { this.add(key, 'INT64', v); }

  /** Declares a tensor; data must later be written in the same order. ne is ne0-first. */
  addTensorInfo(name: string, ne: number[], type: GgmlTypeName): void {
    this.expect(['metadata', 'tensor infos'], `tensor info '${name}' (all tensor infos must come before the first tensor data)`);
    const where = `GgufWriter ${this.path}: tensor '${name}'`;
    if (typeof name !== 'string' || name.length === 0) throw new Error(`GgufWriter ${this.path}: tensor name must be a non-empty string`);
    const nameBytes = Buffer.byteLength(name);
    if (nameBytes >= GGML_MAX_NAME) throw new Error(`${where}: name is ${nameBytes} bytes; ggml allows at most ${GGML_MAX_NAME - 1}`);
    if (this.infoIndex.has(name)) throw new Error(`${where}: duplicate tensor name`);
    if (!Object.prototype.hasOwnProperty.call(GGML_TYPES, type)) throw new Error(`${where}: unknown ggml type ${String(type)}`);
    if (!Array.isArray(ne) || ne.length < 1 || ne.length > GGML_MAX_DIMS) throw new Error(`${where}: needs 1..${GGML_MAX_DIMS} dimensions, got [${ne}]`);
    for (const d of ne) {
      if (!Number.isSafeInteger(d) || d < 0) throw new Error(`${where}: dimension ${d} is not a non-negative integer`);
    }
    let byteLength: number;
    try {
      byteLength = ggmlTensorBytes(type, ne);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
    this.state = 'tensor infos';
    this.infoIndex.set(name, this.infos.length);
    this.infos.push({ name, ne: [...ne], type, byteLength, offset: this.dataSize });
    this.dataSize += alignUp(byteLength, this.alignmentValue);
  }

  private headerSize(): number {
    let n = 4 + 4 + 8 + 8;
    for (const b of this.kvBufs) n += b.length;
    for (const t of this.infos) n += 8 + Buffer.byteLength(t.name) + 4 + 8 * t.ne.length + 4 + 8;
    return alignUp(n, this.alignmentValue);
  }

  private async writeHeader(): Promise<void> {
    const fixed = Buffer.alloc(24);
    fixed.write('GGUF', 0, 'latin1');
    fixed.writeUInt32LE(GGUF_VERSION, 4);
    fixed.writeBigUInt64LE(BigInt(this.infos.length), 8);
    fixed.writeBigUInt64LE(BigInt(this.kvBufs.length), 16);
    const parts: Buffer[] = [fixed, ...this.kvBufs];
    for (const t of this.infos) {
      const name = encodeString(t.name);
      const rec = Buffer.alloc(name.length + 4 + 8 * t.ne.length + 4 + 8);
      name.copy(rec, 0);
      let at = name.length;
      rec.writeUInt32LE(t.ne.length, at); at += 4;
      for (const d of t.ne) { rec.writeBigUInt64LE(BigInt(d), at); at += 8; }
      rec.writeUInt32LE(GGML_TYPES[t.type].id, at); at += 4;
      rec.writeBigUInt64LE(BigInt(t.offset), at);
      parts.push(rec);
    }
    let size = 0;
    for (const p of parts) size += p.length;
    const padded = alignUp(size, this.alignmentValue);
    parts.push(Buffer.alloc(padded - size));
    const header = Buffer.concat(parts, padded);
    this.kvBufs.length = 0; // the encoded metadata is on disk now; let it go
    await this.writeAt(header);
    this.dataStart = this.pos;
  }

  /** Appends at the current position, gathering small pieces; copies, so callers may reuse `bytes`. */
  private async append(bytes: Uint8Array): Promise<void> {
    if (bytes.length >= COALESCE_BYTES) {
      await this.flush();
      await this.writeAt(bytes);
      return;
    }
    this.pending ??= Buffer.allocUnsafe(COALESCE_BYTES);
    if (this.pendingLen + bytes.length > COALESCE_BYTES) await this.flush();
    this.pending.set(bytes, this.pendingLen);
    this.pendingLen += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.pendingLen === 0) return;
    const n = this.pendingLen;
    this.pendingLen = 0;
    await this.writeAt(this.pending!.subarray(0, n));
  }

  private async writeAt(bytes: Uint8Array): Promise<void> {
    let done = 0;
    try {
      while (done < bytes.length) {
        const len = Math.min(MAX_WRITE, bytes.length - done);
        const { bytesWritten } = await this.file.handle.write(bytes, done, len, this.pos);
        done += bytesWritten;
        this.pos += bytesWritten;
      }
    } catch (e) {
      throw await this.ioFailure(e, 'writing');
    }
  }

  /** Aborts (deleting the temp file) and turns an I/O error into a QtkError saying what to do. */
  private async ioFailure(e: unknown, doing: string): Promise<QtkError> {
    const total = this.state === 'metadata' || this.state === 'tensor infos' ? undefined : this.dataStart + this.dataSize;
    await this.abort().catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    const dir = nodePath.dirname(nodePath.resolve(this.path));
    const size = total !== undefined ? ` (the file needs ${fmtBytes(total)}; ${fmtBytes(this.pos)} were written)` : '';
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      return fileError(this.path, `the disk is full while ${doing}${size}; the partial file was removed`, `Free space in ${dir} or choose an output on a larger disk`, e);
    }
    if (code === 'EACCES' || code === 'EPERM' || code === 'EROFS') {
      return fileError(this.path, `permission denied while ${doing} in ${dir}; the partial file was removed`, 'Choose an output folder you can write to', e);
    }
    if (code === 'EFBIG') {
      return fileError(this.path, `the file system refuses a file this large${size}; the partial file was removed`, 'Write to a file system without a 4 GB file limit (not FAT32)', e);
    }
    return fileError(this.path, `I/O error while ${doing} (${(e as Error).message}); the partial file was removed`, 'Check the disk and try again', e);
  }

  /**
   * Writes the next bytes of tensor `name`. Tensors come in info order; a tensor may arrive in
   * several chunks. Padding is added when a tensor completes. The first call writes the header.
   */
  async writeTensorData(name: string, chunk: Uint8Array): Promise<void> {
    this.expect(['tensor infos', 'tensor data'], `tensor data for '${name}'`);
    if (this.busy) throw new Error(`GgufWriter ${this.path}: expected the previous writeTensorData() to be awaited, got another call for '${name}'`);
    this.busy = true;
    try {
      await this.writeTensorDataNow(name, chunk);
    } finally {
      this.busy = false;
    }
  }

  private async writeTensorDataNow(name: string, chunk: Uint8Array): Promise<void> {
    // Zero-byte tensors need no data call; step over them.
    if (this.curWritten === 0) {
      while (this.infos[this.cur]?.byteLength === 0 && this.infos[this.cur]!.name !== name) this.cur++;
    }
    const t = this.infos[this.cur];
    if (t === undefined) throw new Error(`GgufWriter ${this.path}: expected finish(), got tensor data for '${name}' (all ${this.infos.length} tensors are complete)`);
    if (name !== t.name) {
      const known = this.infoIndex.has(name) ? '' : ' (no tensor info has that name)';
      throw new Error(`GgufWriter ${this.path}: expected tensor data for '${t.name}' (tensor ${this.cur + 1} of ${this.infos.length}), got '${name}'${known}`);
    }
    const left = t.byteLength - this.curWritten;
    if (chunk.length > left) {
      throw new Error(`GgufWriter ${this.path}: tensor '${name}' (${t.type} [${t.ne}]) takes ${t.byteLength} bytes; a chunk of ${chunk.length} bytes overruns it by ${chunk.length - left}`);
    }
    if (this.state === 'tensor infos') {
      this.state = 'tensor data';
      await this.writeHeader();
    }
    if (chunk.length > 0) await this.append(chunk);
    this.curWritten += chunk.length;
    if (this.curWritten === t.byteLength) {
      const pad = alignUp(t.byteLength, this.alignmentValue) - t.byteLength;
      if (pad > 0) await this.append(new Uint8Array(pad));
      this.cur++;
      this.curWritten = 0;
    }
  }

  /** Checks every tensor is complete, then fsyncs and renames onto the target path. */
  async finish(): Promise<void> {
    this.expect(['metadata', 'tensor infos', 'tensor data'], 'finish()');
    if (this.curWritten === 0) {
      while (this.infos[this.cur]?.byteLength === 0) this.cur++;
    }
    if (this.cur < this.infos.length) {
      const t = this.infos[this.cur]!;
      throw new Error(`GgufWriter ${this.path}: expected tensor data for '${t.name}' (tensor ${this.cur + 1} of ${this.infos.length}, ${this.curWritten} of ${t.byteLength} bytes written), got finish()`);
    }
    if (this.state !== 'tensor data') {
      this.state = 'tensor data';
      await this.writeHeader();
    }
    await this.flush();
    try {
      await this.file.commit();
    } catch (e) {
      throw await this.ioFailure(e, 'saving');
    }
    this.state = 'finished';
  }

  /** Deletes the temp file; safe to call twice and after finish() (then it does nothing). */
  async abort(): Promise<void> {
    if (this.state === 'finished' || this.state === 'aborted') return;
    this.state = 'aborted';
    await this.file.abort();
  }
}

function checkAlignment(path: string, a: number): void {
  if (!Number.isSafeInteger(a) || a <= 0 || a > 0xffffffff || (a & (a - 1)) !== 0) {
    throw new QtkError(`${path}: GGUF alignment ${a} is not a power of two. Use 32 (the default) or another power of two.`, { file: path });
  }
}

function fmtBytes(n: number): string {
  return n >= 1e9 ? `${(n / 1e9).toFixed(2)} GB` : n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${n} bytes`;
}
