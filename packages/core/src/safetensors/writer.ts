// Streaming safetensors writer, a state machine: the header comes from the declared tensor list, then
// the data tensor by tensor in that order (in chunks if wanted); the file appears only on finish().
import { openAtomic, type AtomicFile } from '../atomic-file.js';
import { IO_CHUNK_BYTES } from './file.js';
import { SAFETENSORS_DTYPES, SAFETENSORS_LIMITS, isSafetensorsDtype, type SafetensorsDtype } from './format.js';

export interface SafetensorsWriterTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
}

/** Small chunks are gathered into one buffer of this size before hitting the disk. */
const COALESCE_BYTES = 4 << 20;

/** The header bytes (length prefix + JSON padded with spaces to 8) and each tensor's data offsets. */
export function buildSafetensorsHeader(tensors: SafetensorsWriterTensor[], metadata?: Record<string, string>): { bytes: Uint8Array; offsets: [number, number][] } {
  const parts: string[] = [];
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new Error(`SafetensorsWriter: expected string metadata values, got ${typeof v} for key ${JSON.stringify(k)}`);
    }
    parts.push(`"__metadata__":${JSON.stringify(metadata)}`);
  }
  const seen = new Set<string>();
  const offsets: [number, number][] = [];
  let pos = 0;
  for (const t of tensors) {
    if (t.name === '__metadata__' || seen.has(t.name)) throw new Error(`SafetensorsWriter: expected unique tensor names other than __metadata__, got ${JSON.stringify(t.name)}`);
    seen.add(t.name);
    if (!isSafetensorsDtype(t.dtype)) throw new Error(`SafetensorsWriter: expected a dtype among ${Object.keys(SAFETENSORS_DTYPES).join(', ')}, got ${JSON.stringify(t.dtype)} for ${t.name}`);
    if (!Array.isArray(t.shape) || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new Error(`SafetensorsWriter: expected a shape of non-negative integers, got ${JSON.stringify(t.shape)} for ${t.name}`);
    }
    const size = t.shape.reduce((a, d) => a * d, SAFETENSORS_DTYPES[t.dtype].bytes);
    if (!Number.isSafeInteger(pos + size)) throw new Error(`SafetensorsWriter: expected under 2^53 bytes, got more at ${t.name}`);
    offsets.push([pos, pos + size]);
    // Built by hand, not as one object: JS would move integer-like tensor names ("0") to the front.
    parts.push(`${JSON.stringify(t.name)}:{"dtype":${JSON.stringify(t.dtype)},"shape":${JSON.stringify(t.shape)},"data_offsets":[${pos},${pos + size}]}`);
    pos += size;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const L = SAFETENSORS_LIMITS.lengthPrefixBytes;
  const A = SAFETENSORS_LIMITS.headerAlignment;
  const padded = Math.ceil(json.length / A) * A;
  if (padded > SAFETENSORS_LIMITS.maxHeaderBytes) throw new Error(`SafetensorsWriter: expected a header of at most ${SAFETENSORS_LIMITS.maxHeaderBytes} bytes, got ${padded}`);
  const bytes = new Uint8Array(L + padded).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, L);
  return { bytes, offsets };
}

export class SafetensorsWriter {
  readonly path: string;
  private readonly tensors: { name: string; byteLength: number }[];
  private file: AtomicFile;
  private position: number;
  private current = 0;
  private written = 0;
  private buffer = new Uint8Array(0);
  private buffered = 0;
  private state: 'open' | 'finished' | 'aborted' = 'open';

  private constructor(path: string, file: AtomicFile, headerLength: number, tensors: { name: string; byteLength: number }[]) {
    this.path = path;
    this.file = file;
    this.position = headerLength;
    this.tensors = tensors;
  }

  static async create(path: string, tensors: SafetensorsWriterTensor[], opts: { metadata?: Record<string, string>; overwrite?: boolean } = {}): Promise<SafetensorsWriter> {
    const { bytes, offsets } = buildSafetensorsHeader(tensors, opts.metadata);
    const file = await openAtomic(path, { overwrite: opts.overwrite });
    try {
      await writeAll(file, bytes, 0);
    } catch (e) {
      await file.abort();
      throw e;
    }
    return new SafetensorsWriter(path, file, bytes.length, tensors.map((t, i) => ({ name: t.name, byteLength: offsets[i]![1] - offsets[i]![0] })));
  }

  /**
   * Appends bytes of tensor `name`. Tensors come in declared order, each in one or more chunks (empty
   * chunks are fine); zero-byte tensors may be skipped.
   */
  async write(name: string, bytes: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new Error(`SafetensorsWriter ${this.path}: expected an open writer, got write(${JSON.stringify(name)}) after ${this.state === 'finished' ? 'finish()' : 'abort()'}`);
    this.advance(name);
    const t = this.tensors[this.current];
    if (t === undefined) throw new Error(`SafetensorsWriter ${this.path}: expected finish() (all ${this.tensors.length} tensors written), got write(${JSON.stringify(name)})`);
    const left = t.byteLength - this.written;
    if (t.name !== name) throw new Error(`SafetensorsWriter ${this.path}: expected tensor ${JSON.stringify(t.name)} (#${this.current + 1} of ${this.tensors.length}, ${left} bytes to go), got ${JSON.stringify(name)}`);
    if (bytes.length > left) {
      const next = this.tensors[this.current + 1];
      const then = left > 0 ? '' : next === undefined ? ', then finish()' : `, then tensor ${JSON.stringify(next.name)}`;
      throw new Error(`SafetensorsWriter ${this.path}: expected at most ${left} more bytes for ${JSON.stringify(name)} (${t.byteLength} in all${then}), got ${bytes.length}`);
    }
    await this.append(bytes);
    this.written += bytes.length;
  }

  /** Checks that every tensor is complete, then flushes, fsyncs and renames onto the target. */
  async finish(): Promise<void> {
    if (this.state !== 'open') throw new Error(`SafetensorsWriter ${this.path}: expected an open writer, got finish() after ${this.state === 'finished' ? 'finish()' : 'abort()'}`);
    this.advance(undefined);
    const t = this.tensors[this.current];
    if (t !== undefined) {
      throw new Error(`SafetensorsWriter ${this.path}: expected ${t.byteLength - this.written} more bytes of tensor ${JSON.stringify(t.name)} (#${this.current + 1} of ${this.tensors.length}), got finish()`);
    }
    await this.flush();
    await this.file.commit();
    this.state = 'finished';
  }

  /** Deletes the temporary file; the target is untouched. Safe to call after an error. */
  async abort(): Promise<void> {
    if (this.state !== 'open') return;
    this.state = 'aborted';
    await this.file.abort();
  }

  /** Moves past complete tensors (zero-byte ones included) until the one named `name`. */
  private advance(name: string | undefined): void {
    for (let t = this.tensors[this.current]; t !== undefined && t.name !== name && this.written === t.byteLength; t = this.tensors[this.current]) {
      this.current++;
      this.written = 0;
    }
  }

  private async append(bytes: Uint8Array): Promise<void> {
    if (bytes.length >= COALESCE_BYTES) {
      await this.flush();
      await writeAll(this.file, bytes, this.position);
      this.position += bytes.length;
      return;
    }
    if (this.buffered + bytes.length > COALESCE_BYTES) await this.flush();
    if (this.buffer.length === 0) this.buffer = new Uint8Array(COALESCE_BYTES);
    this.buffer.set(bytes, this.buffered);
    this.buffered += bytes.length;
  }

  private async flush(): Promise<void> {
    if (this.buffered === 0) return;
    await writeAll(this.file, this.buffer.subarray(0, this.buffered), this.position);
    this.position += this.buffered;
    this.buffered = 0;
  }
}

async function writeAll(file: AtomicFile, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await file.handle.write(bytes, done, Math.min(bytes.length - done, IO_CHUNK_BYTES), position + done);
    done += bytesWritten;
  }
}
