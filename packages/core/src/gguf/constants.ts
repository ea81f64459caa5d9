// GGUF container facts (spec section 1; ggml/src/gguf.cpp). Values are the on-disk u32 tags.

export const GGUF_MAGIC = 'GGUF';
/** Versions 2 and 3 share one encoding (u64 counts); ggml refuses 1 and anything above 3. */
export const GGUF_VERSION = 3;
export const GGUF_SUPPORTED_VERSIONS = [2, 3] as const;
export const GGUF_DEFAULT_ALIGNMENT = 32;
export const GGUF_KEY_ALIGNMENT = 'general.alignment';
/** GGML_MAX_NAME: a tensor name must be shorter than this many bytes. */
export const GGML_MAX_NAME = 64;
export const GGML_MAX_DIMS = 4;

export const GGUF_VALUE_TYPES = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;

export type GgufValueTypeName = keyof typeof GGUF_VALUE_TYPES;

/** Encoded size of fixed-size value types (STRING and ARRAY are variable). */
export const GGUF_VALUE_SIZES: Readonly<Record<Exclude<GgufValueTypeName, 'STRING' | 'ARRAY'>, number>> = {
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  UINT32: 4,
  INT32: 4,
  FLOAT32: 4,
  BOOL: 1,
  UINT64: 8,
  INT64: 8,
  FLOAT64: 8,
};

const VALUE_TYPE_BY_ID = new Map<number, GgufValueTypeName>(
  (Object.keys(GGUF_VALUE_TYPES) as GgufValueTypeName[]).map((n) => [GGUF_VALUE_TYPES[n], n]),
);

export function ggufValueTypeById(id: number): GgufValueTypeName | undefined {
  return VALUE_TYPE_BY_ID.get(id);
}

/**
 * Limits the reader enforces before allocating, so a corrupt or hostile header cannot make it
 * allocate gigabytes. Real models sit far below them (Qwen3.6-27B: ~1,200 tensors, ~50 KV,
 * 248,320-entry vocab, ~10 kB chat template). Override per call through GgufReader.open(path, limits).
 */
export const GGUF_LIMITS = {
  maxTensors: 1_000_000,
  maxKv: 100_000,
  /** Bytes in one string (keys, values, tensor names, each array element). */
  maxStringBytes: 64 * 1024 * 1024,
  maxArrayLength: 64 * 1024 * 1024,
  /** Bytes of header + KV + tensor infos held in memory while parsing. */
  maxHeaderBytes: 2 * 1024 * 1024 * 1024 - 1,
} as const;

export type GgufLimits = { -readonly [K in keyof typeof GGUF_LIMITS]: number };

export type GgufScalar = number | bigint | boolean | string;

export interface GgufKV {
  key: string;
  /** The stored type; 'ARRAY' for arrays, whose element type is elemType. */
  type: GgufValueTypeName;
  value: GgufScalar | GgufScalar[];
  elemType?: GgufValueTypeName;
  /**
   * Original bytes of strings that are not valid UTF-8 (some vocabularies have such tokens), by element
   * index (0 for a scalar). `value` holds them decoded with U+FFFD; GgufWriter.addKV writes these bytes
   * back, so copying metadata from one GGUF to another is byte-exact. Absent when every string is valid.
   */
  rawStrings?: ReadonlyMap<number, Uint8Array>;
}
