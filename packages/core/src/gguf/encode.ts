// Typed, range-checked encoding of GGUF metadata values. Each KV becomes one Buffer, so a
// 248k-entry vocab is one allocation and one write, not 248k small ones.
import {
  GGUF_VALUE_SIZES,
  GGUF_VALUE_TYPES,
  type GgufScalar,
  type GgufValueTypeName,
} from './constants.js';

type FixedType = keyof typeof GGUF_VALUE_SIZES;

const INT_RANGES: Partial<Record<GgufValueTypeName, readonly [bigint, bigint]>> = {
  UINT8: [0n, 0xffn],
  INT8: [-0x80n, 0x7fn],
  UINT16: [0n, 0xffffn],
  INT16: [-0x8000n, 0x7fffn],
  UINT32: [0n, 0xffffffffn],
  INT32: [-0x80000000n, 0x7fffffffn],
  UINT64: [0n, 0xffffffffffffffffn],
  INT64: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

/** Checks `value` fits `type`; returns a message naming the problem, or undefined when it fits. */
export function checkValue(type: GgufValueTypeName, value: unknown): string | undefined {
  const range = INT_RANGES[type];
  if (range) {
    let v: bigint;
    if (typeof value === 'bigint') v = value;
    else if (typeof value === 'number' && Number.isInteger(value)) v = BigInt(value);
    else return `${type} needs an integer, got ${describe(value)}`;
    if (v < range[0] || v > range[1]) return `${String(value)} is outside ${type}'s range ${range[0]}..${range[1]}`;
    return undefined;
  }
  switch (type) {
    case 'FLOAT32':
      if (typeof value !== 'number') return `FLOAT32 needs a number, got ${describe(value)}`;
      if (Number.isFinite(value) && !Number.isFinite(Math.fround(value))) return `${value} overflows FLOAT32`;
      return undefined;
    case 'FLOAT64':
      return typeof value === 'number' ? undefined : `FLOAT64 needs a number, got ${describe(value)}`;
    case 'BOOL':
      return typeof value === 'boolean' ? undefined : `BOOL needs true or false, got ${describe(value)}`;
    case 'STRING':
      // Uint8Array: raw bytes of a string that is not valid UTF-8, copied from another GGUF.
      return typeof value === 'string' || value instanceof Uint8Array ? undefined : `STRING needs a string, got ${describe(value)}`;
    case 'ARRAY':
      return 'ARRAY is not a scalar type: use addArray()';
    default:
      return `unknown GGUF value type ${String(type)}`;
  }
}

function describe(v: unknown): string {
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'bigint') return `${v}n`;
  return `${typeof v} ${String(v)}`;
}

function writeFixed(buf: Buffer, at: number, type: FixedType, v: GgufScalar): number {
  switch (type) {
    case 'UINT8': return buf.writeUInt8(Number(v), at);
    case 'INT8': return buf.writeInt8(Number(v), at);
    case 'UINT16': return buf.writeUInt16LE(Number(v), at);
    case 'INT16': return buf.writeInt16LE(Number(v), at);
    case 'UINT32': return buf.writeUInt32LE(Number(v), at);
    case 'INT32': return buf.writeInt32LE(Number(v), at);
    case 'FLOAT32': return buf.writeFloatLE(v as number, at);
    case 'BOOL': return buf.writeUInt8(v ? 1 : 0, at);
    case 'UINT64': return buf.writeBigUInt64LE(BigInt(v), at);
    case 'INT64': return buf.writeBigInt64LE(BigInt(v), at);
    case 'FLOAT64': return buf.writeDoubleLE(v as number, at);
  }
}

/** A string value: text (written as UTF-8) or the raw bytes of one that is not valid UTF-8. */
export type GgufStringValue = string | Uint8Array;

/** gguf-string: u64 length then UTF-8 bytes. */
export function encodeString(s: GgufStringValue): Buffer {
  const n = typeof s === 'string' ? Buffer.byteLength(s) : s.length;
  const buf = Buffer.allocUnsafe(8 + n);
  buf.writeBigUInt64LE(BigInt(n), 0);
  if (typeof s === 'string') buf.write(s, 8, 'utf8');
  else buf.set(s, 8);
  return buf;
}

/** key, u32 type, value. Callers check the value first. */
export function encodeScalarKV(key: string, type: GgufValueTypeName, value: GgufScalar | Uint8Array): Buffer {
  const k = encodeString(key);
  if (type === 'STRING') {
    const v = encodeString(value as GgufStringValue);
    const buf = Buffer.allocUnsafe(k.length + 4 + v.length);
    k.copy(buf, 0);
    buf.writeUInt32LE(GGUF_VALUE_TYPES.STRING, k.length);
    v.copy(buf, k.length + 4);
    return buf;
  }
  const size = GGUF_VALUE_SIZES[type as FixedType];
  const buf = Buffer.allocUnsafe(k.length + 4 + size);
  k.copy(buf, 0);
  buf.writeUInt32LE(GGUF_VALUE_TYPES[type], k.length);
  writeFixed(buf, k.length + 4, type as FixedType, value as GgufScalar);
  return buf;
}

/** key, u32 ARRAY, u32 element type, u64 count, elements, in one Buffer. */
export function encodeArrayKV(key: string, elemType: GgufValueTypeName, values: ArrayLike<GgufScalar | Uint8Array>): Buffer {
  const k = encodeString(key);
  const n = values.length;
  let body = 0;
  if (elemType === 'STRING') {
    for (let i = 0; i < n; i++) {
      const v = values[i] as GgufStringValue;
      body += 8 + (typeof v === 'string' ? Buffer.byteLength(v) : v.length);
    }
  } else {
    body = n * GGUF_VALUE_SIZES[elemType as FixedType];
  }
  const head = k.length + 4 + 4 + 8;
  const buf = Buffer.allocUnsafe(head + body);
  k.copy(buf, 0);
  let at = k.length;
  buf.writeUInt32LE(GGUF_VALUE_TYPES.ARRAY, at);
  buf.writeUInt32LE(GGUF_VALUE_TYPES[elemType], at + 4);
  buf.writeBigUInt64LE(BigInt(n), at + 8);
  at = head;
  if (elemType === 'STRING') {
    for (let i = 0; i < n; i++) {
      const s = values[i] as GgufStringValue;
      let len: number;
      if (typeof s === 'string') len = buf.write(s, at + 8, 'utf8');
      else { buf.set(s, at + 8); len = s.length; }
      buf.writeBigUInt64LE(BigInt(len), at);
      at += 8 + len;
    }
  } else if (elemType === 'FLOAT32' && values instanceof Float32Array) {
    Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(buf, at);
  } else if (elemType === 'INT32' && values instanceof Int32Array) {
    Buffer.from(values.buffer, values.byteOffset, values.byteLength).copy(buf, at);
  } else {
    const t = elemType as FixedType;
    for (let i = 0; i < n; i++) at = writeFixed(buf, at, t, values[i] as GgufScalar);
  }
  return buf;
}
