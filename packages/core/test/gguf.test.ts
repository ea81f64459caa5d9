// GGUF round trip: our writer's files read back by @huggingface/gguf (an independent parser) and by
// our reader, including tensor bytes; default and custom alignment; a vocab-sized string array.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gguf } from '@huggingface/gguf';
import {
  GGML_TYPES,
  GGUF_VALUE_TYPES,
  GgufReader,
  GgufWriter,
  ggmlTensorBytes,
  type GgmlTypeName,
  type GgufScalar,
  type GgufValueTypeName,
} from '../src/index.js';

let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-gguf-')); });
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

// Seeded bytes so a failure reproduces.
function fakeBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) { s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0; out[i] = s & 0xff; }
  return out;
}

const SCALARS: [string, GgufValueTypeName, GgufScalar][] = [
  ['test.u8', 'UINT8', 255],
  ['test.i8', 'INT8', -128],
  ['test.u16', 'UINT16', 65535],
  ['test.i16', 'INT16', -32768],
  ['test.u32', 'UINT32', 4294967295],
  ['test.i32', 'INT32', -2147483648],
  ['test.f32', 'FLOAT32', 1.5e-7],
  ['test.bool', 'BOOL', true],
  ['test.bool_false', 'BOOL', false],
  ['test.string', 'STRING', 'Grüße, 世界 — <|im_start|>'],
  ['test.empty_string', 'STRING', ''],
  ['test.u64', 'UINT64', 18446744073709551615n],
  ['test.i64', 'INT64', -9223372036854775808n],
  ['test.f64', 'FLOAT64', Math.PI],
];
const ARRAYS: [string, GgufValueTypeName, GgufScalar[] | ArrayLike<number>][] = [
  ['test.arr_u8', 'UINT8', [0, 1, 255]],
  ['test.arr_i32', 'INT32', Int32Array.from([-1, 0, 7, 2147483647])],
  ['test.arr_i32_plain', 'INT32', [11, 11, 10, 10]],
  ['test.arr_f32', 'FLOAT32', Float32Array.from([0.5, -2, 1e-3])],
  ['test.arr_f64', 'FLOAT64', [1 / 3, -0]],
  ['test.arr_bool', 'BOOL', [true, false, true]],
  ['test.arr_str', 'STRING', ['a', 'Ġthe', '', '日本']],
  ['test.arr_u64', 'UINT64', [1n, 2n ** 63n]],
  ['test.arr_i16', 'INT16', [-5, 5]],
];
const TENSORS: [string, number[], GgmlTypeName][] = [
  ['token_embd.weight', [8, 3], 'F32'],
  ['blk.0.attn_norm.weight', [16], 'F16'],
  ['blk.0.ffn_down.weight', [64, 2, 1], 'Q8_0'],
  ['blk.0.attn_q.weight', [256, 3], 'Q4_K'],
  ['output.weight', [5, 1, 1, 2], 'BF16'],
];

async function writeSample(file: string, alignment?: number): Promise<Map<string, Uint8Array>> {
  const w = await GgufWriter.create(file, alignment === undefined ? {} : { alignment });
  w.addString('general.architecture', 'qwen35');
  for (const [k, t, v] of SCALARS) w.add(k, t, v);
  for (const [k, t, v] of ARRAYS) w.addArray(k, t, v);
  const data = new Map<string, Uint8Array>();
  TENSORS.forEach(([name, ne, type], i) => {
    w.addTensorInfo(name, ne, type);
    data.set(name, fakeBytes(ggmlTensorBytes(type, ne), i + 1));
  });
  for (const [name] of TENSORS) {
    const bytes = data.get(name)!;
    // Send the larger tensors in uneven chunks, as a converter streaming rows would.
    const cut = [0, Math.floor(bytes.length / 3), Math.floor(bytes.length / 2), bytes.length];
    for (let i = 0; i < 3; i++) await w.writeTensorData(name, bytes.subarray(cut[i], cut[i + 1]));
  }
  await w.finish();
  return data;
}

function expectedValue(t: GgufValueTypeName, v: GgufScalar): GgufScalar {
  return t === 'FLOAT32' ? Math.fround(v as number) : v;
}

describe.each([undefined, 64, 4096])('GgufWriter → readers (alignment %s)', (alignment) => {
  let file: string;
  let data: Map<string, Uint8Array>;
  beforeAll(async () => {
    file = path.join(dir, `sample-${alignment ?? 'default'}.gguf`);
    data = await writeSample(file, alignment);
  });

  it('@huggingface/gguf reads identical metadata and tensor infos', async () => {
    const hf = await gguf(file, { typedMetadata: true, allowLocalFile: true });
    const md = hf.typedMetadata as Record<string, { value: unknown; type: number; subType?: number }>;
    expect(md.version!.value).toBe(3);
    expect(md['general.architecture']).toEqual({ value: 'qwen35', type: GGUF_VALUE_TYPES.STRING });
    for (const [k, t, v] of SCALARS) {
      expect(md[k], k).toEqual({ value: expectedValue(t, v), type: GGUF_VALUE_TYPES[t] });
    }
    for (const [k, t, v] of ARRAYS) {
      expect(md[k]!.type, k).toBe(GGUF_VALUE_TYPES.ARRAY);
      expect(md[k]!.subType, k).toBe(GGUF_VALUE_TYPES[t]);
      expect(md[k]!.value, k).toEqual(Array.from(v as ArrayLike<GgufScalar>, (x) => expectedValue(t, x)));
    }
    if (alignment !== undefined) expect(md['general.alignment']).toEqual({ value: alignment, type: GGUF_VALUE_TYPES.UINT32 });
    else expect(md['general.alignment']).toBeUndefined();
    expect(Number(hf.metadata.kv_count)).toBe(1 + SCALARS.length + ARRAYS.length + (alignment === undefined ? 0 : 1));

    const ours = await GgufReader.open(file);
    try {
      expect(Number(hf.tensorDataOffset)).toBe(ours.dataOffset);
      expect(ours.dataOffset % (alignment ?? 32)).toBe(0);
      let expectedOffset = 0;
      expect(hf.tensorInfos.map((t) => t.name)).toEqual(TENSORS.map(([n]) => n));
      hf.tensorInfos.forEach((t, i) => {
        const [name, ne, type] = TENSORS[i]!;
        expect(t.shape.map(Number), name).toEqual(ne);
        expect(t.dtype, name).toBe(GGML_TYPES[type].id);
        expect(Number(t.offset), name).toBe(expectedOffset);
        expect(ours.tensors[i]!.offset).toBe(expectedOffset);
        const a = alignment ?? 32;
        expectedOffset += Math.ceil(ggmlTensorBytes(type, ne) / a) * a;
      });
      // The last tensor is padded too, so the file ends on an alignment boundary.
      expect((await fs.stat(file)).size).toBe(ours.dataOffset + expectedOffset);
    } finally {
      await ours.close();
    }
  });

  it('GgufReader reads the same metadata, tensor infos and data bytes', async () => {
    const r = await GgufReader.open(file);
    try {
      expect(r.version).toBe(3);
      expect(r.alignment).toBe(alignment ?? 32);
      for (const [k, t, v] of SCALARS) {
        expect(r.kv.get(k), k).toEqual({ key: k, type: t, value: expectedValue(t, v) });
      }
      for (const [k, t, v] of ARRAYS) {
        expect(r.kv.get(k), k).toEqual({ key: k, type: 'ARRAY', elemType: t, value: Array.from(v as ArrayLike<GgufScalar>, (x) => expectedValue(t, x)) });
      }
      expect(r.get<string>('general.architecture')).toBe('qwen35');
      expect(r.get('no.such.key')).toBeUndefined();
      expect(r.tensors.map((t) => [t.name, t.ne, t.type])).toEqual(TENSORS);
      for (const t of r.tensors) {
        expect(t.absoluteOffset).toBe(r.dataOffset + t.offset);
        expect(t.byteLength).toBe(data.get(t.name)!.length);
        expect(await r.readTensor(t.name)).toEqual(data.get(t.name));
      }
      const q = r.tensor('blk.0.attn_q.weight');
      expect(await r.readTensorRange(q, 144, 144)).toEqual(data.get(q.name)!.subarray(144, 288));
      await expect(r.readTensorRange(q, 400, 100)).rejects.toThrow(/outside tensor 'blk.0.attn_q.weight' \(432 bytes\)/);
      expect(() => r.tensor('missing.weight')).toThrow(/sample-.*\.gguf: has no tensor named 'missing.weight'/);
    } finally {
      await r.close();
    }
  });
});

describe('GgufWriter: large arrays and files without tensors', () => {
  it('writes a 150k-token vocab and merges as single arrays, read back by both parsers', async () => {
    const file = path.join(dir, 'vocab.gguf');
    const tokens = Array.from({ length: 150_000 }, (_, i) => (i % 7 === 0 ? `Ġtok${i}` : `t${i}`));
    const merges = Array.from({ length: 150_000 }, (_, i) => `a${i} b${i}`);
    const types = new Int32Array(150_000).fill(1);
    const w = await GgufWriter.create(file);
    w.addArray('tokenizer.ggml.tokens', 'STRING', tokens);
    w.addArray('tokenizer.ggml.token_type', 'INT32', types);
    w.addArray('tokenizer.ggml.merges', 'STRING', merges);
    await w.finish();
    const r = await GgufReader.open(file);
    expect(r.get<string[]>('tokenizer.ggml.tokens')).toEqual(tokens);
    expect(r.get<string[]>('tokenizer.ggml.merges')).toEqual(merges);
    expect(r.tensors).toEqual([]);
    await r.close();
    const hf = await gguf(file, { allowLocalFile: true });
    expect((hf.metadata as Record<string, unknown>)['tokenizer.ggml.tokens']).toEqual(tokens);
    expect(hf.tensorInfos).toEqual([]);
  });
});

describe('strings that are not valid UTF-8', () => {
  it('are decoded with U+FFFD but their bytes are kept, so addKV copies them exactly', async () => {
    const a = path.join(dir, 'raw-a.gguf');
    const b = path.join(dir, 'raw-b.gguf');
    const bad = Uint8Array.from([0x61, 0xff, 0xfe, 0x62]); // 'a', two invalid bytes, 'b'
    const w = await GgufWriter.create(a);
    w.addArray('tokenizer.ggml.tokens', 'STRING', ['ok', bad, '\uFFFD real replacement char', Uint8Array.from([0xe4, 0xb8])]);
    w.add('test.raw', 'STRING', bad);
    w.addString('test.bom', '\uFEFF#');
    await w.finish();
    const r = await GgufReader.open(a);
    const tokens = r.kv.get('tokenizer.ggml.tokens')!;
    expect(tokens.value).toEqual(['ok', 'a\uFFFD\uFFFDb', '\uFFFD real replacement char', '\uFFFD']);
    expect([...tokens.rawStrings!.keys()]).toEqual([1, 3]);
    expect(r.kv.get('test.raw')!.rawStrings!.get(0)).toEqual(bad);
    expect(r.get('test.bom')).toBe('\uFEFF#'); // a leading BOM is part of the token, not dropped
    expect(r.kv.get('test.bom')!.rawStrings).toBeUndefined();
    const w2 = await GgufWriter.create(b);
    for (const kv of r.kv.values()) w2.addKV(kv);
    await w2.finish();
    await r.close();
    expect(await fs.readFile(b)).toEqual(await fs.readFile(a));
  });
});
