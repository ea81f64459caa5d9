// A GGUF header with real tensor shapes and no data: the file is extended to its full size with
// ftruncate (a sparse file: nothing is written), so llama.cpp can plan a 27B model's memory without it.
import { open } from 'node:fs/promises';
import { GGML_TYPES, alignUp, ggmlTensorBytes, type GgmlTypeName, type GgufKV } from '@qtk/core';

const TYPE_IDS = { UINT8: 0, INT8: 1, UINT16: 2, INT16: 3, UINT32: 4, INT32: 5, FLOAT32: 6, BOOL: 7, STRING: 8, ARRAY: 9, UINT64: 10, INT64: 11, FLOAT64: 12 } as const;
type Scalar = keyof typeof TYPE_IDS;

function str(s: string): Buffer {
  const b = Buffer.from(s, 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(b.length));
  return Buffer.concat([len, b]);
}

function scalar(type: Scalar, v: unknown): Buffer {
  const b = Buffer.alloc(8);
  switch (type) {
    case 'STRING': return str(String(v));
    case 'UINT32': b.writeUInt32LE(Number(v)); return b.subarray(0, 4);
    case 'INT32': b.writeInt32LE(Number(v)); return b.subarray(0, 4);
    case 'FLOAT32': b.writeFloatLE(Number(v)); return b.subarray(0, 4);
    case 'BOOL': b.writeUInt8(v ? 1 : 0); return b.subarray(0, 1);
    case 'UINT64': b.writeBigUInt64LE(BigInt(v as number)); return b;
    case 'FLOAT64': b.writeDoubleLE(Number(v)); return b;
    default: throw new Error(`sparse-gguf: type ${type} not handled`);
  }
}

function kvBytes(kv: Pick<GgufKV, 'key' | 'type' | 'value' | 'elemType'>): Buffer {
  const type = Buffer.alloc(4);
  type.writeUInt32LE(TYPE_IDS[kv.type as Scalar]);
  if (kv.type !== 'ARRAY') return Buffer.concat([str(kv.key), type, scalar(kv.type as Scalar, kv.value)]);
  const values = kv.value as unknown[];
  const head = Buffer.alloc(12);
  head.writeUInt32LE(TYPE_IDS[kv.elemType as Scalar]);
  head.writeBigUInt64LE(BigInt(values.length), 4);
  return Buffer.concat([str(kv.key), type, head, ...values.map((v) => scalar(kv.elemType as Scalar, v))]);
}

export async function writeSparseGguf(
  file: string, kvs: readonly Pick<GgufKV, 'key' | 'type' | 'value' | 'elemType'>[], tensors: readonly { name: string; ne: readonly number[]; type: GgmlTypeName }[],
): Promise<number> {
  const head = Buffer.alloc(24);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(BigInt(tensors.length), 8);
  head.writeBigUInt64LE(BigInt(kvs.length), 16);
  const parts: Buffer[] = [head, ...kvs.map(kvBytes)];
  let offset = 0;
  for (const t of tensors) {
    const info = Buffer.alloc(4 + 8 * t.ne.length + 4 + 8);
    info.writeUInt32LE(t.ne.length, 0);
    t.ne.forEach((d, i) => info.writeBigUInt64LE(BigInt(d), 4 + 8 * i));
    info.writeUInt32LE(GGML_TYPES[t.type].id, 4 + 8 * t.ne.length);
    info.writeBigUInt64LE(BigInt(offset), 8 + 8 * t.ne.length);
    parts.push(str(t.name), info);
    offset += alignUp(ggmlTensorBytes(t.type, t.ne), 32);
  }
  const header = Buffer.concat(parts);
  const dataStart = alignUp(header.length, 32);
  const fh = await open(file, 'w');
  try {
    await fh.write(header, 0, header.length, 0);
    await fh.truncate(dataStart + offset);
  } finally {
    await fh.close();
  }
  return dataStart + offset;
}
