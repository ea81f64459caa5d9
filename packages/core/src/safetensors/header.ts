// Parses and validates a safetensors header the way the Rust crate does (safetensors/src/tensor.rs):
// every dtype known, shape × dtype size = data_offsets span, tensors packed contiguously from offset 0
// to the end of the file with no overlaps and no holes. Every refusal names the file, the value and the limit.
import { fileError } from '../errors.js';
import { SAFETENSORS_DTYPES, SAFETENSORS_LIMITS, isSafetensorsDtype, type SafetensorsTensorInfo } from './format.js';

const NOT_SAFETENSORS = 'Check that this is a .safetensors file and re-download it if it is truncated or corrupted';

export interface ParsedHeader {
  /** Bytes of JSON after the 8-byte length. */
  headerLength: number;
  /** Absolute offset of the data section. */
  dataOffset: number;
  metadata: Record<string, string>;
  /** In file (data offset) order. */
  tensors: SafetensorsTensorInfo[];
}

/**
 * Reads the u64 header length from the first 8 bytes and checks it against the file size and the cap.
 * Returns the JSON length in bytes.
 */
export function checkHeaderLength(file: string, prefix: Uint8Array, fileSize: number): number {
  const L = SAFETENSORS_LIMITS.lengthPrefixBytes;
  if (fileSize < L) {
    throw fileError(file, `file is ${fileSize} bytes, shorter than the ${L}-byte header length every safetensors file starts with`, NOT_SAFETENSORS);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, L).getBigUint64(0, true);
  const cap = SAFETENSORS_LIMITS.maxHeaderBytes;
  if (n > BigInt(cap)) {
    throw fileError(file, `header length ${n} bytes is over the limit of ${cap} bytes (SAFETENSORS_LIMITS.maxHeaderBytes)`, NOT_SAFETENSORS);
  }
  if (n > BigInt(fileSize - L)) {
    throw fileError(file, `header length ${n} bytes runs past the end of the file (the file is ${fileSize} bytes, so at most ${fileSize - L} bytes fit)`, NOT_SAFETENSORS);
  }
  return Number(n);
}

function describe(v: unknown): string {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 80 ? `${s.slice(0, 77)}...` : s;
}

function isNonNegativeInteger(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Parses the JSON header bytes of a file of `fileSize` bytes whose JSON is `headerBytes` long. */
export function parseHeader(file: string, headerBytes: Uint8Array, fileSize: number): ParsedHeader {
  const headerLength = headerBytes.length;
  const dataOffset = SAFETENSORS_LIMITS.lengthPrefixBytes + headerLength;
  const dataSize = fileSize - dataOffset;
  let text: string;
  try {
    // fatal: refuse invalid UTF-8 like Rust's from_utf8; ignoreBOM keeps a BOM so JSON.parse refuses it too.
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch (e) {
    throw fileError(file, `header (${headerLength} bytes) is not valid UTF-8`, NOT_SAFETENSORS, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw fileError(file, `header is not valid JSON (${(e as Error).message}; it starts ${describe(text.slice(0, 40))})`, NOT_SAFETENSORS, e);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw fileError(file, `header must be a JSON object of tensors, got ${describe(json)}`, NOT_SAFETENSORS);
  }

  const metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  const known = Object.keys(SAFETENSORS_DTYPES).join(', ');
  for (const [name, value] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (value === null) continue; // the Rust crate reads it as Option<HashMap<String, String>>
      if (typeof value !== 'object' || Array.isArray(value)) {
        throw fileError(file, `__metadata__ must be an object of string to string, got ${describe(value)}`, NOT_SAFETENSORS);
      }
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        if (typeof v !== 'string') {
          throw fileError(file, `__metadata__ must map strings to strings, but key ${describe(k)} has value ${describe(v)}`, 'Re-save the file with string metadata values, e.g. JSON-encoded');
        }
        metadata[k] = v;
      }
      continue;
    }
    const where = `tensor ${describe(name)}`;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw fileError(file, `${where} must be an object {dtype, shape, data_offsets}, got ${describe(value)}`, NOT_SAFETENSORS);
    }
    const { dtype, shape, data_offsets: offsets } = value as Record<string, unknown>;
    if (!isSafetensorsDtype(dtype)) {
      throw fileError(file, `${where} has unknown dtype ${describe(dtype)}; known dtypes are ${known}`, 'Convert the checkpoint to one of these dtypes (e.g. with torch: tensor.to(torch.bfloat16)) and save it again');
    }
    if (!Array.isArray(shape) || !shape.every(isNonNegativeInteger)) {
      throw fileError(file, `${where} has shape ${describe(shape)}; a shape must be a list of non-negative integers`, NOT_SAFETENSORS);
    }
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isNonNegativeInteger) || offsets[0] > offsets[1]) {
      throw fileError(file, `${where} has data_offsets ${describe(offsets)}; they must be [begin, end] with 0 <= begin <= end`, NOT_SAFETENSORS);
    }
    const [begin, end] = offsets as [number, number];
    let expected = SAFETENSORS_DTYPES[dtype].bytes;
    for (const d of shape) expected *= d;
    if (!Number.isSafeInteger(expected)) {
      throw fileError(file, `${where} with shape ${describe(shape)} has more than ${Number.MAX_SAFE_INTEGER} bytes`, NOT_SAFETENSORS);
    }
    if (end - begin !== expected) {
      throw fileError(file, `${where}: shape ${describe(shape)} × ${dtype} (${SAFETENSORS_DTYPES[dtype].bytes} bytes) is ${expected} bytes, but data_offsets [${begin}, ${end}] span ${end - begin} bytes`, NOT_SAFETENSORS);
    }
    if (end > dataSize) {
      throw fileError(file, `${where} has data_offsets [${begin}, ${end}] past the end of the data section (${dataSize} bytes: the file is ${fileSize} bytes and its data starts at byte ${dataOffset})`, NOT_SAFETENSORS);
    }
    tensors.push({ name, dtype, shape: shape as number[], file, dataStart: dataOffset + begin, byteLength: expected });
  }

  // Like the Rust crate: sorted by offset, the tensors must tile [0, dataSize) exactly.
  tensors.sort((a, b) => a.dataStart - b.dataStart || a.byteLength - b.byteLength);
  let pos = dataOffset;
  let prev: SafetensorsTensorInfo | undefined;
  for (const t of tensors) {
    if (t.dataStart < pos) {
      throw fileError(file, `tensor ${describe(t.name)} (data_offsets [${t.dataStart - dataOffset}, ${t.dataStart - dataOffset + t.byteLength}]) overlaps tensor ${describe(prev!.name)} (which ends at ${pos - dataOffset})`, NOT_SAFETENSORS);
    }
    if (t.dataStart > pos) {
      throw fileError(file, `tensor ${describe(t.name)} starts at data offset ${t.dataStart - dataOffset} but the previous tensor ends at ${pos - dataOffset}: holes between tensors are refused, as the Rust safetensors crate refuses them`, NOT_SAFETENSORS);
    }
    pos = t.dataStart + t.byteLength;
    prev = t;
  }
  if (pos !== fileSize) {
    throw fileError(file, `the tensors end at data offset ${pos - dataOffset} but the data section has ${dataSize} bytes: ${fileSize - pos} trailing bytes belong to no tensor`, NOT_SAFETENSORS);
  }
  return { headerLength, dataOffset, metadata, tensors };
}
