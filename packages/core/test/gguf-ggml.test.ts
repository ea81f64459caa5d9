// ggml itself as the oracle for the GGUF container (node-llama-cpp's libggml-base.so through koffi):
// ggml's gguf writer produces byte-identical files from the same content, and ggml's gguf reader
// loads ours with the same values, tensor infos and data offset.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, promises as fs } from 'node:fs';
import { createRequire } from 'node:module';
import * as os from 'node:os';
import * as path from 'node:path';
import koffi from 'koffi';
import { GGML_TYPES, GGUF_VALUE_TYPES, GgufReader, GgufWriter, ggmlTensorBytes, type GgmlTypeName, type GgufScalar, type GgufValueTypeName } from '../src/index.js';

const require = createRequire(import.meta.url);
function ggmlBaseLib(): string | undefined {
  if (process.platform !== 'linux' || process.arch !== 'x64') return undefined;
  for (const dir of require.resolve.paths('@node-llama-cpp/linux-x64') ?? []) {
    const lib = path.join(dir, '@node-llama-cpp', 'linux-x64', 'bins', 'linux-x64', 'libggml-base.so');
    if (existsSync(lib)) return lib;
  }
  return undefined;
}
const LIB = ggmlBaseLib();
// On linux-x64 the library ships with node-llama-cpp: missing means a broken install, which fails
// here unless QTK_ALLOW_NO_GGML=1 says to skip these oracle tests.
if (!LIB && process.platform === 'linux' && process.arch === 'x64' && process.env['QTK_ALLOW_NO_GGML'] !== '1') {
  throw new Error('libggml-base.so of @node-llama-cpp/linux-x64 not found: run npm ci (or set QTK_ALLOW_NO_GGML=1 to skip the ggml oracle tests)');
}

let bound: ReturnType<typeof bindGgufOnce> | undefined;
function bindGguf(lib: string) {
  return (bound ??= bindGgufOnce(lib));
}
/** The few ggml/gguf entry points these tests use. */
function bindGgufOnce(lib: string) {
  const base = koffi.load(lib);
  const ggufInitParams = koffi.struct('qtk_gguf_init_params', { no_alloc: 'bool', ctx: 'void *' });
  const ggmlInitParams = koffi.struct('qtk_ggml_init_params', { mem_size: 'size_t', mem_buffer: 'void *', no_alloc: 'bool' });
  const logCb = koffi.proto('void qtk_ggml_log_cb(int level, const char *text, void *user)');
  const f = (sig: string) => base.func(sig);
  const g = {
    initFromFile: f('void *gguf_init_from_file(const char *fname, qtk_gguf_init_params params)'),
    initEmpty: f('void *gguf_init_empty()'),
    free: f('void gguf_free(void *ctx)'),
    version: f('uint32_t gguf_get_version(void *ctx)'),
    alignment: f('size_t gguf_get_alignment(void *ctx)'),
    dataOffset: f('size_t gguf_get_data_offset(void *ctx)'),
    nKv: f('int64_t gguf_get_n_kv(void *ctx)'),
    key: f('const char *gguf_get_key(void *ctx, int64_t id)'),
    kvType: f('int gguf_get_kv_type(void *ctx, int64_t id)'),
    arrType: f('int gguf_get_arr_type(void *ctx, int64_t id)'),
    arrN: f('size_t gguf_get_arr_n(void *ctx, int64_t id)'),
    arrData: f('const void *gguf_get_arr_data(void *ctx, int64_t id)'),
    arrStr: f('const char *gguf_get_arr_str(void *ctx, int64_t id, size_t i)'),
    valData: f('const void *gguf_get_val_data(void *ctx, int64_t id)'),
    valStr: f('const char *gguf_get_val_str(void *ctx, int64_t id)'),
    nTensors: f('int64_t gguf_get_n_tensors(void *ctx)'),
    tensorName: f('const char *gguf_get_tensor_name(void *ctx, int64_t id)'),
    tensorOffset: f('size_t gguf_get_tensor_offset(void *ctx, int64_t id)'),
    tensorType: f('int gguf_get_tensor_type(void *ctx, int64_t id)'),
    tensorNe: f('const int64_t *gguf_get_tensor_ne(void *ctx, int64_t id)'),
    setU8: f('void gguf_set_val_u8(void *ctx, const char *key, uint8_t v)'),
    setI8: f('void gguf_set_val_i8(void *ctx, const char *key, int8_t v)'),
    setU16: f('void gguf_set_val_u16(void *ctx, const char *key, uint16_t v)'),
    setI16: f('void gguf_set_val_i16(void *ctx, const char *key, int16_t v)'),
    setU32: f('void gguf_set_val_u32(void *ctx, const char *key, uint32_t v)'),
    setI32: f('void gguf_set_val_i32(void *ctx, const char *key, int32_t v)'),
    setF32: f('void gguf_set_val_f32(void *ctx, const char *key, float v)'),
    setU64: f('void gguf_set_val_u64(void *ctx, const char *key, uint64_t v)'),
    setI64: f('void gguf_set_val_i64(void *ctx, const char *key, int64_t v)'),
    setF64: f('void gguf_set_val_f64(void *ctx, const char *key, double v)'),
    setBool: f('void gguf_set_val_bool(void *ctx, const char *key, bool v)'),
    setStr: f('void gguf_set_val_str(void *ctx, const char *key, const char *v)'),
    setArrData: f('void gguf_set_arr_data(void *ctx, const char *key, int type, const void *data, size_t n)'),
    setArrStr: f('void gguf_set_arr_str(void *ctx, const char *key, const char **data, size_t n)'),
    addTensor: f('void gguf_add_tensor(void *ctx, void *tensor)'),
    setTensorData: f('void gguf_set_tensor_data(void *ctx, const char *name, const void *data)'),
    writeToFile: f('bool gguf_write_to_file(void *ctx, const char *fname, bool only_meta)'),
    ggmlInit: f('void *ggml_init(qtk_ggml_init_params params)'),
    ggmlFree: f('void ggml_free(void *ctx)'),
    newTensor: f('void *ggml_new_tensor(void *ctx, int type, int n_dims, const int64_t *ne)'),
    setName: f('void *ggml_set_name(void *tensor, const char *name)'),
    logSet: f('void ggml_log_set(qtk_ggml_log_cb *cb, void *user)'),
  };
  void ggufInitParams; void ggmlInitParams;
  // ggml prints each refusal on stderr; keep test output to the assertions.
  const quiet = koffi.register(() => {}, koffi.pointer(logCb));
  g.logSet(quiet, null);
  return g;
}
type Gguf = ReturnType<typeof bindGgufOnce>;

/** Whether ggml's reader accepts a file when it also loads the tensor data (no_alloc = false). */
function ggmlLoadsData(g: Gguf, file: string): boolean {
  const out = new BigUint64Array(1); // receives the ggml_context holding the data
  const ctx = g.initFromFile(file, { no_alloc: false, ctx: out });
  if (ctx === null) return false;
  g.free(ctx);
  if (out[0] !== 0n) g.ggmlFree(out[0]);
  return true;
}

/** What ggml's reader sees in a file (metadata and infos only), as plain values; null when ggml refuses it. */
function ggmlRead(g: Gguf, file: string) {
  const ctx = g.initFromFile(file, { no_alloc: true, ctx: null });
  if (ctx === null) return null;
  try {
    const kv: Record<string, { type: number; elemType?: number; value: unknown }> = {};
    const n = Number(g.nKv(ctx));
    for (let i = 0; i < n; i++) {
      const key = g.key(ctx, i) as string;
      const type = g.kvType(ctx, i) as number;
      if (type === GGUF_VALUE_TYPES.ARRAY) {
        const et = g.arrType(ctx, i) as number;
        const len = Number(g.arrN(ctx, i));
        const values: unknown[] = [];
        if (et === GGUF_VALUE_TYPES.STRING) for (let j = 0; j < len; j++) values.push(g.arrStr(ctx, i, j));
        else { const p = g.arrData(ctx, i); for (let j = 0; j < len; j++) values.push(decodeAt(p, et, j)); }
        kv[key] = { type, elemType: et, value: values };
      } else {
        kv[key] = { type, value: type === GGUF_VALUE_TYPES.STRING ? g.valStr(ctx, i) : decodeAt(g.valData(ctx, i), type, 0) };
      }
    }
    const tensors = [];
    for (let i = 0; i < Number(g.nTensors(ctx)); i++) {
      const ne = Array.from(koffi.decode(g.tensorNe(ctx, i), 'int64_t', 4) as ArrayLike<number | bigint>, Number);
      tensors.push({ name: g.tensorName(ctx, i) as string, type: g.tensorType(ctx, i) as number, ne, offset: Number(g.tensorOffset(ctx, i)) });
    }
    return { version: g.version(ctx) as number, alignment: Number(g.alignment(ctx)), dataOffset: Number(g.dataOffset(ctx)), kv, tensors };
  } finally {
    g.free(ctx);
  }
}

const CTYPE: Record<number, [string, number]> = {
  0: ['uint8_t', 1], 1: ['int8_t', 1], 2: ['uint16_t', 2], 3: ['int16_t', 2], 4: ['uint32_t', 4], 5: ['int32_t', 4],
  6: ['float', 4], 7: ['bool', 1], 10: ['uint64_t', 8], 11: ['int64_t', 8], 12: ['double', 8],
};
function decodeAt(p: unknown, type: number, i: number): unknown {
  const [ct, size] = CTYPE[type]!;
  const v = koffi.decode(p, i * size, ct);
  return type === 10 || type === 11 ? BigInt(v as number | bigint) : v;
}

const SCALARS: [string, GgufValueTypeName, GgufScalar][] = [
  ['general.architecture', 'STRING', 'qwen35'],
  ['t.u8', 'UINT8', 200], ['t.i8', 'INT8', -100], ['t.u16', 'UINT16', 60000], ['t.i16', 'INT16', -30000],
  ['t.u32', 'UINT32', 4000000000], ['t.i32', 'INT32', -2000000000], ['t.f32', 'FLOAT32', Math.fround(0.1)],
  ['t.u64', 'UINT64', 2n ** 64n - 2n], ['t.i64', 'INT64', -(2n ** 62n)], ['t.f64', 'FLOAT64', 1 / 3],
  ['t.bool', 'BOOL', true], ['t.str', 'STRING', 'héllo 世界'],
];
const ARRAYS: [string, GgufValueTypeName, GgufScalar[]][] = [
  ['t.arr.i32', 'INT32', [1, -2, 3]],
  ['t.arr.f32', 'FLOAT32', [0.5, -1.25]],
  ['t.arr.u8', 'UINT8', [1, 2, 3, 4, 5]],
  ['t.arr.bool', 'BOOL', [true, false]],
  ['t.arr.str', 'STRING', ['Ġa', 'b c', '<|im_end|>']],
];
const TENSORS: [string, number[], GgmlTypeName][] = [
  ['token_embd.weight', [256, 2], 'Q4_K'],
  ['blk.0.attn_norm.weight', [7], 'F32'],
  ['blk.0.ffn_up.weight', [64, 3], 'Q8_0'],
  ['blk.0.ffn_gate.weight', [3, 2, 2], 'F16'],
  ['blk.0.ssm_a', [5], 'BF16'],
];
function tensorBytes(i: number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, j) => (j * 31 + i * 7) & 0xff);
}

let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-gguf-ggml-')); });
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

describe.skipIf(!LIB)('GGUF against ggml\'s own gguf code (via koffi; skipped off linux-x64)', () => {
  it('our writer and ggml\'s writer produce byte-identical files; ggml reads ours back', async () => {
    const g = bindGguf(LIB!);
    const ours = path.join(dir, 'ours.gguf');
    const theirs = path.join(dir, 'ggml.gguf');
    const data = TENSORS.map(([, ne, type], i) => tensorBytes(i, ggmlTensorBytes(type, ne)));

    const w = await GgufWriter.create(ours);
    for (const [k, t, v] of SCALARS) w.add(k, t, v);
    for (const [k, t, v] of ARRAYS) w.addArray(k, t, v);
    for (const [name, ne, type] of TENSORS) w.addTensorInfo(name, ne, type);
    for (let i = 0; i < TENSORS.length; i++) await w.writeTensorData(TENSORS[i]![0], data[i]!);
    await w.finish();

    const gctx = g.initEmpty();
    const tctx = g.ggmlInit({ mem_size: 1 << 20, mem_buffer: null, no_alloc: true });
    try {
      const setters: Record<string, (c: unknown, k: string, v: never) => void> = {
        UINT8: g.setU8, INT8: g.setI8, UINT16: g.setU16, INT16: g.setI16, UINT32: g.setU32, INT32: g.setI32,
        FLOAT32: g.setF32, UINT64: g.setU64, INT64: g.setI64, FLOAT64: g.setF64, BOOL: g.setBool, STRING: g.setStr,
      };
      for (const [k, t, v] of SCALARS) setters[t]!(gctx, k, v as never);
      for (const [k, t, v] of ARRAYS) {
        if (t === 'STRING') { g.setArrStr(gctx, k, v, v.length); continue; }
        const bytes = t === 'INT32' ? new Int32Array(v as number[]) : t === 'FLOAT32' ? new Float32Array(v as number[]) : Uint8Array.from(v as number[], Number);
        g.setArrData(gctx, k, GGUF_VALUE_TYPES[t], bytes, v.length);
      }
      TENSORS.forEach(([name, ne, type], i) => {
        const t = g.newTensor(tctx, GGML_TYPES[type].id, ne.length, new BigInt64Array(ne.map(BigInt)));
        g.setName(t, name);
        g.addTensor(gctx, t);
        g.setTensorData(gctx, name, data[i]);
      });
      expect(g.writeToFile(gctx, theirs, false)).toBe(true);
    } finally {
      g.ggmlFree(tctx);
      g.free(gctx);
    }
    const a = await fs.readFile(ours);
    const b = await fs.readFile(theirs);
    expect(a.length).toBe(b.length);
    expect(a.equals(b)).toBe(true);

    const seen = ggmlRead(g, ours)!;
    expect(seen).not.toBeNull();
    const r = await GgufReader.open(ours);
    try {
      expect(seen.version).toBe(r.version);
      expect(seen.alignment).toBe(r.alignment);
      expect(seen.dataOffset).toBe(r.dataOffset);
      const mine = Object.fromEntries([...r.kv.values()].map((kv) => [kv.key, {
        type: GGUF_VALUE_TYPES[kv.type],
        ...(kv.elemType ? { elemType: GGUF_VALUE_TYPES[kv.elemType] } : {}),
        value: kv.value,
      }]));
      expect(seen.kv).toEqual(mine);
      expect(seen.tensors).toEqual(r.tensors.map((t) => ({ name: t.name, type: GGML_TYPES[t.type].id, ne: [...t.ne, 1, 1, 1].slice(0, 4), offset: t.offset })));
    } finally {
      await r.close();
    }
  });

  it('ggml refuses what our reader refuses', async () => {
    const g = bindGguf(LIB!);
    const good = path.join(dir, 'good.gguf');
    const w = await GgufWriter.create(good, { alignment: 64 });
    w.addString('general.name', 'x');
    w.addTensorInfo('a.weight', [32, 2], 'Q8_0');
    w.addTensorInfo('b.weight', [4], 'F32');
    await w.writeTensorData('a.weight', new Uint8Array(68));
    await w.writeTensorData('b.weight', new Uint8Array(16));
    await w.finish();
    const bytes = await fs.readFile(good);
    expect(ggmlRead(g, good)).not.toBeNull();
    expect(ggmlLoadsData(g, good)).toBe(true);
    const aInfo = bytes.indexOf(Buffer.from('a.weight')) + 8;
    const bInfo = bytes.indexOf(Buffer.from('b.weight')) + 8;
    const alignAt = bytes.indexOf(Buffer.from('general.alignment')) + 17 + 4;
    const cases: [string, (b: Buffer) => Buffer][] = [
      ['bad magic', (b) => { b.write('GGUX', 0, 'latin1'); return b; }],
      ['version 1', (b) => { b.writeUInt32LE(1, 4); return b; }],
      ['truncated KV', (b) => b.subarray(0, bytes.indexOf(Buffer.from('general.name')) + 14)],
      ['data past EOF', (b) => b.subarray(0, b.length - 64)],
      ['alignment 48', (b) => { b.writeUInt32LE(48, alignAt); return b; }],
      ['misaligned offset', (b) => { b.writeBigUInt64LE(130n, bInfo + 4 + 8 + 4); return b; }],
      ['unknown type 4', (b) => { b.writeUInt32LE(4, aInfo + 4 + 16); return b; }],
      ['unknown type 99', (b) => { b.writeUInt32LE(99, aInfo + 4 + 16); return b; }],
      ['ne0 % block', (b) => { b.writeBigUInt64LE(33n, aInfo + 4); return b; }],
      ['5 dims', (b) => { b.writeUInt32LE(5, aInfo); return b; }],
    ];
    for (const [what, mutate] of cases) {
      const file = path.join(dir, `bad-${what.replace(/\W+/g, '-')}.gguf`);
      await fs.writeFile(file, mutate(Buffer.from(bytes)));
      // ggml checks the data section only when it loads it (llama.cpp's loader checks each tensor's bounds).
      if (what === 'data past EOF') expect(ggmlLoadsData(g, file), `ggml on ${what}`).toBe(false);
      else expect(ggmlRead(g, file), `ggml on ${what}`).toBeNull();
      await expect(GgufReader.open(file), `ours on ${what}`).rejects.toThrow(file);
    }
  });
});
