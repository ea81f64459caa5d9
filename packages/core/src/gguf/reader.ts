// GGUF reader: parses header, metadata and tensor infos once (validated against GGUF_LIMITS and
// ggml's own rules), then reads tensor data on demand by file offset. Never loads the data section.
import { promises as fs, readSync } from 'node:fs';
import { QtkError, fileError } from '../errors.js';
import { GGML_TYPES, ggmlTensorBytes, ggmlTypeById, isGgmlTypeId, type GgmlTypeName } from '../ggml-types.js';
import {
  GGML_MAX_DIMS,
  GGML_MAX_NAME,
  GGUF_DEFAULT_ALIGNMENT,
  GGUF_KEY_ALIGNMENT,
  GGUF_LIMITS,
  GGUF_SUPPORTED_VERSIONS,
  ggufValueTypeById,
  type GgufKV,
  type GgufLimits,
  type GgufScalar,
  type GgufValueTypeName,
} from './constants.js';

export interface GgufTensorInfo {
  name: string;
  /** Dimensions, ne0 (fastest varying) first. */
  ne: number[];
  type: GgmlTypeName;
  /** Byte offset relative to the start of the data section. */
  offset: number;
  /** Byte offset from the start of the file. */
  absoluteOffset: number;
  /** Unpadded size of the tensor's data. */
  byteLength: number;
}

export type GgufReaderOptions = Partial<GgufLimits>;

const NEXT_STEP_CORRUPT = 'The file is damaged or not a GGUF model: re-download or re-create it';
const CHUNK = 4 * 1024 * 1024;
// fs reads move at most 2 GiB per call; multi-GB tensors are read in pieces of this size.
const MAX_READ = 1024 * 1024 * 1024;

/** Sequential little-endian reads from a file descriptor through a growing window. */
class Cursor {
  private buf = Buffer.alloc(0);
  private bufStart = 0;
  pos = 0;
  /** What is being read, for "truncated at byte N while reading …". */
  context = 'the header';

  constructor(
    private readonly fd: number,
    readonly fileSize: number,
    private readonly file: string,
    private readonly maxHeaderBytes: number,
  ) {}

  private ensure(n: number): number {
    const rel = this.pos - this.bufStart;
    if (rel + n <= this.buf.length) return rel;
    if (this.pos + n > this.fileSize) {
      throw fileError(this.file, `truncated at byte ${this.fileSize} while reading ${this.context} (needed ${n} bytes at byte ${this.pos})`, NEXT_STEP_CORRUPT);
    }
    if (this.pos + n > this.maxHeaderBytes) {
      throw fileError(this.file, `header (metadata and tensor infos) runs past ${this.maxHeaderBytes} bytes (limit maxHeaderBytes) while reading ${this.context}`, NEXT_STEP_CORRUPT);
    }
    const size = Math.min(Math.max(CHUNK, n), this.fileSize - this.pos);
    const next = Buffer.allocUnsafe(size);
    const keep = Math.max(0, this.buf.length - rel);
    this.buf.copy(next, 0, rel, rel + keep);
    let filled = keep;
    while (filled < size) {
      const got = readSync(this.fd, next, filled, size - filled, this.pos + filled);
      if (got === 0) {
        throw fileError(this.file, `truncated at byte ${this.pos + filled} while reading ${this.context} (the file shrank while being read)`, NEXT_STEP_CORRUPT);
      }
      filled += got;
    }
    this.buf = next;
    this.bufStart = this.pos;
    return 0;
  }

  u8(): number { const r = this.ensure(1); this.pos += 1; return this.buf[r]!; }
  i8(): number { const r = this.ensure(1); this.pos += 1; return this.buf.readInt8(r); }
  u16(): number { const r = this.ensure(2); this.pos += 2; return this.buf.readUInt16LE(r); }
  i16(): number { const r = this.ensure(2); this.pos += 2; return this.buf.readInt16LE(r); }
  u32(): number { const r = this.ensure(4); this.pos += 4; return this.buf.readUInt32LE(r); }
  i32(): number { const r = this.ensure(4); this.pos += 4; return this.buf.readInt32LE(r); }
  f32(): number { const r = this.ensure(4); this.pos += 4; return this.buf.readFloatLE(r); }
  f64(): number { const r = this.ensure(8); this.pos += 8; return this.buf.readDoubleLE(r); }
  u64(): bigint { const r = this.ensure(8); this.pos += 8; return this.buf.readBigUInt64LE(r); }
  i64(): bigint { const r = this.ensure(8); this.pos += 8; return this.buf.readBigInt64LE(r); }
  /** Set by bytes() when the string it just read was not valid UTF-8: a copy of the raw bytes. */
  lastRaw: Uint8Array | undefined;
  bytes(n: number): string {
    const r = this.ensure(n);
    this.pos += n;
    const s = this.buf.toString('utf8', r, r + n);
    this.lastRaw = undefined;
    // Invalid UTF-8 always decodes to U+FFFD; only then compare bytes to tell a real U+FFFD apart.
    if (s.includes('\uFFFD') && !Buffer.from(s, 'utf8').equals(this.buf.subarray(r, r + n))) {
      this.lastRaw = new Uint8Array(this.buf.subarray(r, r + n)); // a copy: the window is reused
    }
    return s;
  }
}

export class GgufReader {
  readonly kv: ReadonlyMap<string, GgufKV>;
  readonly tensors: GgufTensorInfo[];
  private readonly byName: Map<string, GgufTensorInfo>;
  private closed = false;

  /** @internal Use GgufReader.open(). */
  constructor(
    readonly path: string,
    private readonly handle: fs.FileHandle,
    readonly fileSize: number,
    readonly version: number,
    readonly alignment: number,
    readonly dataOffset: number,
    kv: Map<string, GgufKV>,
    tensors: GgufTensorInfo[],
  ) {
    this.kv = kv;
    this.tensors = tensors;
    this.byName = new Map(tensors.map((t) => [t.name, t]));
  }

  static async open(path: string, opts: GgufReaderOptions = {}): Promise<GgufReader> {
    const limits: GgufLimits = { ...GGUF_LIMITS, ...opts };
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(path, 'r');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : code === 'EISDIR' ? 'is a folder, not a .gguf file' : (e as Error).message;
      throw fileError(path, `cannot open (${why})`, 'Check the path and that you can read it', e);
    }
    try {
      const st = await handle.stat();
      if (!st.isFile()) throw fileError(path, 'is not a regular file', 'Pass the path of a .gguf file');
      return parse(path, handle, st.size, limits);
    } catch (e) {
      await handle.close().catch(() => {});
      throw e;
    }
  }

  /** The value of a metadata key, or undefined when absent. */
  get<T = unknown>(key: string): T | undefined {
    return this.kv.get(key)?.value as T | undefined;
  }

  /** A tensor's info; QtkError if the file has no tensor of that name. */
  tensor(name: string): GgufTensorInfo {
    const t = this.byName.get(name);
    if (!t) {
      throw fileError(this.path, `has no tensor named '${name}' (it has ${this.tensors.length} tensors)`, 'Run `qtk inspect` on the file to list its tensors');
    }
    return t;
  }

  hasTensor(name: string): boolean {
    return this.byName.has(name);
  }

  async readTensor(nameOrInfo: string | GgufTensorInfo): Promise<Uint8Array> {
    const t = typeof nameOrInfo === 'string' ? this.tensor(nameOrInfo) : nameOrInfo;
    return this.readTensorRange(t, 0, t.byteLength);
  }

  /** `byteLength` bytes of a tensor's data starting `byteStart` bytes into it. */
  async readTensorRange(nameOrInfo: string | GgufTensorInfo, byteStart: number, byteLength: number): Promise<Uint8Array> {
    if (this.closed) throw new Error(`${this.path}: GgufReader used after close()`);
    const t = typeof nameOrInfo === 'string' ? this.tensor(nameOrInfo) : nameOrInfo;
    if (!Number.isSafeInteger(byteStart) || !Number.isSafeInteger(byteLength) || byteStart < 0 || byteLength < 0 || byteStart + byteLength > t.byteLength) {
      throw new Error(`${this.path}: range [${byteStart}, +${byteLength}) is outside tensor '${t.name}' (${t.byteLength} bytes)`);
    }
    const out = new Uint8Array(byteLength);
    let done = 0;
    while (done < byteLength) {
      const len = Math.min(MAX_READ, byteLength - done);
      const { bytesRead } = await this.handle.read(out, done, len, t.absoluteOffset + byteStart + done);
      if (bytesRead === 0) {
        throw fileError(this.path, `truncated at byte ${t.absoluteOffset + byteStart + done} while reading tensor '${t.name}'`, NEXT_STEP_CORRUPT);
      }
      done += bytesRead;
    }
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.handle.close();
  }
}

function parse(path: string, handle: fs.FileHandle, fileSize: number, limits: GgufLimits): GgufReader {
  const c = new Cursor(handle.fd, fileSize, path, limits.maxHeaderBytes);
  const bad = (problem: string) => fileError(path, problem, NEXT_STEP_CORRUPT);

  c.context = 'the magic';
  if (fileSize < 4) throw fileError(path, `is ${fileSize} bytes long, too short to be a GGUF file`, 'Pass a .gguf model file');
  const magic = c.bytes(4);
  if (magic !== 'GGUF') {
    const shown = JSON.stringify([...Buffer.from(magic, 'latin1')].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '?')).join(''));
    throw fileError(path, `is not a GGUF file (starts with ${shown}, expected "GGUF")`, 'Pass a .gguf model file');
  }
  c.context = 'the version';
  const version = c.u32();
  if (!(GGUF_SUPPORTED_VERSIONS as readonly number[]).includes(version)) {
    const hint = (version & 0xffff) === 0 ? ' (looks big-endian; only little-endian GGUF is supported)' : '';
    throw fileError(path, `is GGUF version ${version}${hint}; supported versions are ${GGUF_SUPPORTED_VERSIONS.join(' and ')}`, 'Re-create the file with a current llama.cpp converter or qtk convert');
  }
  c.context = 'the tensor count';
  const nTensors = count(c.u64(), limits.maxTensors, 'tensor count', 'maxTensors');
  c.context = 'the metadata count';
  const nKv = count(c.u64(), limits.maxKv, 'metadata key count', 'maxKv');

  function count(v: bigint, limit: number, what: string, limitName: string): number {
    if (v > BigInt(limit)) throw bad(`${what} ${v} is over the limit ${limit} (${limitName})`);
    return Number(v);
  }
  function str(what: string): string {
    const len = c.u64();
    if (len > BigInt(limits.maxStringBytes)) throw bad(`${what} is a string of ${len} bytes, over the limit ${limits.maxStringBytes} (maxStringBytes)`);
    return c.bytes(Number(len));
  }
  function scalar(type: GgufValueTypeName, key: string): GgufScalar {
    switch (type) {
      case 'UINT8': return c.u8();
      case 'INT8': return c.i8();
      case 'UINT16': return c.u16();
      case 'INT16': return c.i16();
      case 'UINT32': return c.u32();
      case 'INT32': return c.i32();
      case 'FLOAT32': return c.f32();
      case 'BOOL': {
        const b = c.u8();
        if (b > 1) throw bad(`key '${key}' has BOOL byte ${b} at byte ${c.pos - 1}; expected 0 or 1`);
        return b === 1;
      }
      case 'STRING': return str(`the value of key '${key}'`);
      case 'UINT64': return c.u64();
      case 'INT64': return c.i64();
      case 'FLOAT64': return c.f64();
      case 'ARRAY': throw bad(`key '${key}' is an array of arrays, which GGUF does not allow`);
    }
  }
  function valueType(id: number, key: string): GgufValueTypeName {
    const t = ggufValueTypeById(id);
    if (t === undefined) throw bad(`key '${key}' has unknown value type ${id} at byte ${c.pos - 4} (known: 0..12)`);
    return t;
  }

  const kv = new Map<string, GgufKV>();
  for (let i = 0; i < nKv; i++) {
    c.context = `metadata key ${i} of ${nKv}`;
    const key = str(`metadata key ${i}`);
    if (key.length === 0) throw bad(`metadata key ${i} is empty`);
    if (kv.has(key)) throw bad(`metadata key '${key}' appears twice`);
    c.context = `key '${key}'`;
    const type = valueType(c.u32(), key);
    if (type === 'ARRAY') {
      const elemType = valueType(c.u32(), key);
      if (elemType === 'ARRAY') throw bad(`key '${key}' is an array of arrays, which GGUF does not allow`);
      const nBig = c.u64();
      if (nBig > BigInt(limits.maxArrayLength)) throw bad(`key '${key}' is an array of ${nBig} elements, over the limit ${limits.maxArrayLength} (maxArrayLength)`);
      const n = Number(nBig);
      c.context = `key '${key}' (array of ${n} ${elemType})`;
      const values: GgufScalar[] = new Array(n);
      let raw: Map<number, Uint8Array> | undefined;
      for (let j = 0; j < n; j++) {
        values[j] = scalar(elemType, key);
        if (elemType === 'STRING' && c.lastRaw) (raw ??= new Map()).set(j, c.lastRaw);
      }
      kv.set(key, { key, type, value: values, elemType, ...(raw ? { rawStrings: raw } : {}) });
    } else {
      const value = scalar(type, key);
      const raw = type === 'STRING' && c.lastRaw ? new Map([[0, c.lastRaw]]) : undefined;
      kv.set(key, { key, type, value, ...(raw ? { rawStrings: raw } : {}) });
    }
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = kv.get(GGUF_KEY_ALIGNMENT);
  if (al) {
    if (al.type !== 'UINT32') throw bad(`key '${GGUF_KEY_ALIGNMENT}' has type ${al.type}; it must be UINT32`);
    alignment = al.value as number;
    if (alignment === 0 || (alignment & (alignment - 1)) !== 0) {
      throw bad(`alignment ${alignment} (key '${GGUF_KEY_ALIGNMENT}') is not a power of two`);
    }
  }

  const tensors: GgufTensorInfo[] = [];
  const names = new Set<string>();
  for (let i = 0; i < nTensors; i++) {
    c.context = `tensor info ${i} of ${nTensors}`;
    const name = str(`tensor name ${i}`);
    c.context = `tensor info ${i} ('${name}')`;
    if (Buffer.byteLength(name) >= GGML_MAX_NAME) throw bad(`tensor name '${name}' is ${Buffer.byteLength(name)} bytes; ggml allows at most ${GGML_MAX_NAME - 1}`);
    if (names.has(name)) throw bad(`tensor '${name}' appears twice`);
    names.add(name);
    const nDims = c.u32();
    if (nDims < 1 || nDims > GGML_MAX_DIMS) throw bad(`tensor '${name}' has ${nDims} dimensions; ggml allows 1..${GGML_MAX_DIMS}`);
    const ne: number[] = [];
    for (let d = 0; d < nDims; d++) {
      const v = c.u64();
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`tensor '${name}' dimension ${d} is ${v}, too large`);
      ne.push(Number(v));
    }
    const typeId = c.u32();
    if (!isGgmlTypeId(typeId)) throw bad(`tensor '${name}' has unknown ggml type id ${typeId}: ${describeUnknownType(typeId)}`);
    const type = ggmlTypeById(typeId);
    const offBig = c.u64();
    if (offBig > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`tensor '${name}' has offset ${offBig}, too large`);
    const offset = Number(offBig);
    const block = GGML_TYPES[type].blockSize;
    if (ne[0]! % block !== 0) throw bad(`tensor '${name}' has ne0 = ${ne[0]}, not a multiple of ${type}'s block size ${block}`);
    let byteLength: number;
    try {
      byteLength = ggmlTensorBytes(type, ne);
    } catch (e) {
      throw bad(`tensor '${name}': ${(e as Error).message}`);
    }
    tensors.push({ name, ne, type, offset, absoluteOffset: 0, byteLength });
  }

  const dataOffset = alignUp(c.pos, alignment);
  let expected = 0;
  for (const t of tensors) {
    if (t.offset % alignment !== 0) throw bad(`tensor '${t.name}' has offset ${t.offset}, not a multiple of the alignment ${alignment}`);
    // ggml requires tensors back to back in info order, each padded to the alignment.
    if (t.offset !== expected) throw bad(`tensor '${t.name}' has offset ${t.offset}, expected ${expected} (ggml requires tensor data in info order, each padded to ${alignment} bytes)`);
    t.absoluteOffset = dataOffset + t.offset;
    if (t.absoluteOffset + t.byteLength > fileSize) {
      throw bad(`tensor '${t.name}' data ends at byte ${t.absoluteOffset + t.byteLength}, past the end of the file (${fileSize} bytes); the file is truncated`);
    }
    expected = t.offset + alignUp(t.byteLength, alignment);
  }
  return new GgufReader(path, handle, fileSize, version, alignment, dataOffset, kv, tensors);
}

function describeUnknownType(id: number): string {
  if (id === 4 || id === 5) return 'Q4_2/Q4_3 were removed from ggml; re-quantize from an F16 model';
  if (id >= 31 && id <= 33) return 'Q4_0_x_y repacked types were removed from GGUF files; use Q4_0 (repacked at load time)';
  if (id >= 36 && id <= 38) return 'IQ4_NL_x_y repacked types were removed from GGUF files; use IQ4_NL';
  return `ggml 0.23 defines ids ${Object.values(GGML_TYPES).map((t) => t.id).join(', ')}`;
}

export function alignUp(n: number, alignment: number): number {
  const r = n % alignment;
  return r === 0 ? n : n + alignment - r;
}
