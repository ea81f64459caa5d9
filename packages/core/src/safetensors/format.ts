// Format facts of safetensors (https://github.com/huggingface/safetensors): dtypes and parser limits.

/** Element size of every dtype qtk reads; other dtypes of the format (F8_E5M2, U16…) are refused by name. */
export const SAFETENSORS_DTYPES = {
  F64: { bytes: 8 },
  F32: { bytes: 4 },
  F16: { bytes: 2 },
  BF16: { bytes: 2 },
  F8_E4M3: { bytes: 1 },
  I64: { bytes: 8 },
  I32: { bytes: 4 },
  I16: { bytes: 2 },
  I8: { bytes: 1 },
  U8: { bytes: 1 },
  BOOL: { bytes: 1 },
} as const;

export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPES;

export function isSafetensorsDtype(s: unknown): s is SafetensorsDtype {
  return typeof s === 'string' && Object.prototype.hasOwnProperty.call(SAFETENSORS_DTYPES, s);
}

export const SAFETENSORS_LIMITS = {
  /** The Rust crate's MAX_HEADER_SIZE (100,000,000 bytes); a real 15-shard header is well under 1 MB. */
  maxHeaderBytes: 100_000_000,
  /** Bytes before the JSON header: its length as a little-endian u64. */
  lengthPrefixBytes: 8,
  /** Writers pad the header JSON with spaces to this multiple, as the Python/Rust writers do. */
  headerAlignment: 8,
} as const;

/** The index file of a sharded checkpoint. */
export const SAFETENSORS_INDEX_FILE = 'model.safetensors.index.json';
/** The single-file checkpoint name transformers writes. */
export const SAFETENSORS_SINGLE_FILE = 'model.safetensors';

export interface SafetensorsTensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** Path of the file holding it. */
  file: string;
  /** Absolute file offset of its first byte. */
  dataStart: number;
  byteLength: number;
}

/** Sorts like Python's sorted() on str (by code point), which the llama.cpp converter uses. */
export function compareCodePoints(a: string, b: string): number {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done || y.done) return x.done ? (y.done ? 0 : -1) : 1;
    const cx = x.value.codePointAt(0)!;
    const cy = y.value.codePointAt(0)!;
    if (cx !== cy) return cx - cy;
  }
}
