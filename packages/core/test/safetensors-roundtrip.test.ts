import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  SafetensorsWriter, SafetensorsFile, SafetensorsCheckpoint, SAFETENSORS_DTYPES, QtkError,
  decodeToF32, encodeFromF32, type SafetensorsDtype,
} from '../src/index.js';

let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-st-rt-')); });
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

function bytesOf(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5; // xorshift32: no short period that could hide misplaced chunks
    b[i] = x & 0xff;
  }
  return b;
}

async function writeAll(p: string, tensors: { name: string; dtype: SafetensorsDtype; shape: number[]; data: Uint8Array }[], metadata?: Record<string, string>) {
  const w = await SafetensorsWriter.create(p, tensors, { metadata });
  for (const t of tensors) await w.write(t.name, t.data);
  await w.finish();
}

describe('SafetensorsWriter -> SafetensorsFile round trip', () => {
  it('writes the exact bytes of the format (golden file built from the spec by hand)', async () => {
    const p = path.join(dir, 'golden.safetensors');
    await writeAll(p, [{ name: 'a', dtype: 'F32', shape: [2], data: new Uint8Array(new Float32Array([1, -2]).buffer) }], { format: 'pt' });
    const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
    expect(json.length).toBe(85);
    const golden = Buffer.concat([
      Buffer.from([88, 0, 0, 0, 0, 0, 0, 0]), // 85 rounded up to 88
      Buffer.from(json + '   '),
      Buffer.from([0, 0, 0x80, 0x3f, 0, 0, 0, 0xc0]),
    ]);
    expect((await fs.readFile(p)).equals(golden)).toBe(true);
  });

  it('round-trips every dtype, metadata, chunked writes, zero-size tensors and awkward names', async () => {
    const p = path.join(dir, 'all.safetensors');
    const dtypes = Object.keys(SAFETENSORS_DTYPES) as SafetensorsDtype[];
    const tensors = dtypes.map((dtype, i) => {
      const shape = [3, i + 1];
      const n = 3 * (i + 1) * SAFETENSORS_DTYPES[dtype].bytes;
      return { name: `model.layers.${i}.${dtype.toLowerCase()}`, dtype, shape, data: bytesOf(n, i) };
    });
    tensors.push({ name: '0', dtype: 'F16', shape: [2], data: bytesOf(4, 99) }); // integer-like: JS objects would reorder it
    tensors.push({ name: 'empty', dtype: 'F32', shape: [0, 5], data: new Uint8Array(0) });
    tensors.push({ name: 'scalar', dtype: 'I32', shape: [], data: bytesOf(4, 7) });
    tensors.push({ name: 'ünï "quoted"', dtype: 'U8', shape: [1], data: bytesOf(1, 8) });
    const metadata = { format: 'pt', note: 'déjà vu "quoted"' };
    const w = await SafetensorsWriter.create(p, tensors, { metadata });
    expect(await fs.stat(p).then(() => true, () => false)).toBe(false); // nothing at the target until finish()
    for (const t of tensors) {
      // write each tensor in three uneven chunks (some empty)
      const a = Math.floor(t.data.length / 3);
      await w.write(t.name, t.data.subarray(0, a));
      await w.write(t.name, t.data.subarray(a, a));
      await w.write(t.name, t.data.subarray(a));
    }
    await w.finish();

    const raw = await fs.readFile(p);
    const headerLen = Number(raw.readBigUInt64LE(0));
    expect(headerLen % 8).toBe(0);
    const header = raw.subarray(8, 8 + headerLen).toString('utf8');
    expect(header.startsWith('{"__metadata__":')).toBe(true);
    expect(header.trimEnd()).toBe(header.trimEnd().trim());
    expect(Object.keys(JSON.parse(header)).filter((k) => k !== '__metadata__')).toEqual(
      [...tensors.map((t) => t.name)].sort((x, y) => (x === '0' ? -1 : y === '0' ? 1 : 0)), // JSON.parse itself moves "0" first
    );

    const f = await SafetensorsFile.open(p);
    expect(f.metadata).toEqual(metadata);
    expect(f.names()).toEqual(tensors.map((t) => t.name)); // file order = declared order
    for (const t of tensors) {
      const info = f.tensors.get(t.name)!;
      expect(info).toMatchObject({ name: t.name, dtype: t.dtype, shape: t.shape, file: p, byteLength: t.data.length });
      expect(Buffer.from(raw.subarray(info.dataStart, info.dataStart + info.byteLength)).equals(Buffer.from(t.data))).toBe(true);
      expect(Buffer.from(await f.read(t.name)).equals(Buffer.from(t.data))).toBe(true);
    }
    await f.close();
    await expect(f.read('0')).rejects.toThrow(/after close/);
  });

  it('readRange reads a slice of one tensor and refuses ranges outside it', async () => {
    const p = path.join(dir, 'range.safetensors');
    const vals = Float32Array.from({ length: 64 }, (_, i) => i * 0.5 - 3);
    await writeAll(p, [
      { name: 'pad', dtype: 'U8', shape: [3], data: bytesOf(3, 1) },
      { name: 'w', dtype: 'BF16', shape: [8, 8], data: encodeFromF32(vals, 'BF16') },
    ]);
    const f = await SafetensorsFile.open(p);
    const row3 = await f.readRange('w', 3 * 16, 16); // row 3 of 8 bf16 values, at an odd file offset
    expect([...decodeToF32('BF16', row3)]).toEqual([...vals.subarray(24, 32)]);
    expect((await f.readRange('w', 0, 0)).length).toBe(0);
    expect((await f.readRange('w', 127, 1))[0]).toBe(encodeFromF32(vals, 'BF16')[127]);
    await expect(f.readRange('w', 120, 9)).rejects.toThrow(/expected a range inside its 128 bytes, got start 120, length 9/);
    await expect(f.readRange('w', -1, 1)).rejects.toThrow(RangeError);
    await expect(f.read('nope')).rejects.toThrow(QtkError);
    await f.close();
  });

  it('handles chunks larger than the write buffer and many small ones', async () => {
    const p = path.join(dir, 'big.safetensors');
    const big = bytesOf(5 << 20, 3);
    const w = await SafetensorsWriter.create(p, [
      { name: 'small', dtype: 'U8', shape: [1000] },
      { name: 'big', dtype: 'F32', shape: [big.length / 4] },
      { name: 'big2', dtype: 'U8', shape: [big.length] },
    ]);
    const small = bytesOf(1000, 4);
    for (let i = 0; i < 1000; i += 10) await w.write('small', small.subarray(i, i + 10));
    for (let i = 0; i < big.length; i += 1 << 20) await w.write('big', big.subarray(i, i + (1 << 20)));
    const big2 = bytesOf(big.length, 5);
    await w.write('big2', big2);
    await w.finish();
    const f = await SafetensorsFile.open(p);
    expect(Buffer.from(await f.read('small')).equals(Buffer.from(small))).toBe(true);
    expect(Buffer.from(await f.read('big')).equals(Buffer.from(big))).toBe(true);
    expect(Buffer.from(await f.read('big2')).equals(Buffer.from(big2))).toBe(true);
    expect(f.size).toBe(f.dataOffset + 1000 + 2 * big.length);
    await f.close();
  });
});

describe('SafetensorsWriter state machine', () => {
  const decl = [
    { name: 'a', dtype: 'F32' as const, shape: [2] },
    { name: 'z', dtype: 'F32' as const, shape: [0] },
    { name: 'b', dtype: 'U8' as const, shape: [3] },
  ];

  it('says what it expected and what it got', async () => {
    const p = path.join(dir, 'sm.safetensors');
    const w = await SafetensorsWriter.create(p, decl);
    await expect(w.write('b', new Uint8Array(3))).rejects.toThrow(/expected tensor "a" \(#1 of 3, 8 bytes to go\), got "b"/);
    await expect(w.write('a', new Uint8Array(9))).rejects.toThrow(/expected at most 8 more bytes for "a" \(8 in all\), got 9/);
    await w.write('a', new Uint8Array(5));
    await expect(w.finish()).rejects.toThrow(/expected 3 more bytes of tensor "a" \(#1 of 3\), got finish\(\)/);
    await w.write('a', new Uint8Array(3));
    await w.write('b', new Uint8Array(3)); // the zero-byte "z" may be skipped
    await expect(w.write("b", new Uint8Array(1))).rejects.toThrow(/expected at most 0 more bytes for "b" \(3 in all, then finish\(\)\), got 1/);
    await expect(w.write("a", new Uint8Array(1))).rejects.toThrow(/expected finish\(\) \(all 3 tensors written\), got write\("a"\)/);
    await w.finish();
    await expect(w.write('a', new Uint8Array(1))).rejects.toThrow(/got write\("a"\) after finish\(\)/);
    const f = await SafetensorsFile.open(p);
    expect(f.names()).toEqual(['a', 'z', 'b']);
    await f.close();
  });

  it('refuses bad declarations, overwrites only when asked, and abort leaves nothing', async () => {
    const p = path.join(dir, 'decl.safetensors');
    await expect(SafetensorsWriter.create(p, [decl[0]!, decl[0]!])).rejects.toThrow(/unique tensor names/);
    await expect(SafetensorsWriter.create(p, [{ name: 'x', dtype: 'F8_E5M2' as never, shape: [1] }])).rejects.toThrow(/got "F8_E5M2"/);
    await expect(SafetensorsWriter.create(p, [{ name: 'x', dtype: 'F32', shape: [-1] }])).rejects.toThrow(/non-negative integers, got \[-1\]/);
    await expect(SafetensorsWriter.create(p, [], { metadata: { a: 1 as never } })).rejects.toThrow(/string metadata values/);
    await fs.writeFile(p, 'mine');
    await expect(SafetensorsWriter.create(p, decl)).rejects.toThrow(QtkError);
    const w = await SafetensorsWriter.create(p, decl, { overwrite: true });
    await w.write('a', new Uint8Array(8));
    await w.abort();
    expect(await fs.readFile(p, 'utf8')).toBe('mine');
    expect((await fs.readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
  });
});

describe('SafetensorsCheckpoint', () => {
  it('reads a sharded checkpoint through its index, in llama.cpp converter order', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'sharded-'));
    const s1 = 'model-00001-of-00002.safetensors';
    const s2 = 'model-00002-of-00002.safetensors';
    const v = (k: number) => encodeFromF32(Float32Array.from([k, k + 0.5]), 'BF16');
    await writeAll(path.join(sub, s2), [
      { name: 'model.norm.weight', dtype: 'BF16', shape: [2], data: v(3) },
      { name: 'lm_head.weight', dtype: 'BF16', shape: [2], data: v(4) },
    ]);
    await writeAll(path.join(sub, s1), [
      { name: 'model.layers.1.w', dtype: 'BF16', shape: [2], data: v(1) },
      { name: 'model.layers.0.w', dtype: 'BF16', shape: [2], data: v(0) },
      { name: 'model.embed_tokens.weight', dtype: 'F32', shape: [2], data: encodeFromF32(Float32Array.of(7, 8), 'F32') },
    ], { format: 'pt' });
    // A stray file the index does not name (e.g. Mistral's consolidated.safetensors) is ignored.
    await writeAll(path.join(sub, 'consolidated.safetensors'), [{ name: 'junk', dtype: 'U8', shape: [1], data: new Uint8Array(1) }]);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), JSON.stringify({
      metadata: { total_size: 22 },
      weight_map: { 'lm_head.weight': s2, 'model.norm.weight': s2, 'model.layers.0.w': s1, 'model.layers.1.w': s1, 'model.embed_tokens.weight': s1 },
    }));
    const ck = await SafetensorsCheckpoint.open(sub);
    expect(ck.dir).toBe(sub);
    expect(ck.files).toEqual([path.join(sub, s1), path.join(sub, s2)]);
    expect(ck.names()).toEqual(['model.embed_tokens.weight', 'model.layers.0.w', 'model.layers.1.w', 'lm_head.weight', 'model.norm.weight']);
    expect(ck.has('junk')).toBe(false);
    expect(ck.info('lm_head.weight')).toMatchObject({ dtype: 'BF16', shape: [2], file: path.join(sub, s2), byteLength: 4 });
    expect([...(await ck.readF32('model.layers.1.w'))]).toEqual([1, 1.5]);
    expect([...(await ck.readF32('model.embed_tokens.weight'))]).toEqual([7, 8]);
    expect([...decodeToF32('BF16', await ck.readRange('lm_head.weight', 2, 2))]).toEqual([4.5]);
    expect(ck.metadata()).toEqual({ format: 'pt' });
    const viaIndex = await SafetensorsCheckpoint.open(path.join(sub, 'model.safetensors.index.json'));
    expect(viaIndex.names()).toEqual(ck.names());
    await viaIndex.close();
    const err = (() => { try { ck.info('model.layers.9.w'); } catch (e) { return e as QtkError; } })()!;
    expect(err).toBeInstanceOf(QtkError);
    expect(err.message).toMatch(/model.safetensors.index.json: the checkpoint in .* has no tensor named "model.layers.9.w" \(it has 5 tensors\)/);
    await ck.close();
  });

  it('opens a folder with model.safetensors, a folder of *.safetensors, and a single file', async () => {
    const one = await fs.mkdtemp(path.join(dir, 'single-'));
    await writeAll(path.join(one, 'model.safetensors'), [{ name: 'b', dtype: 'I8', shape: [2], data: new Uint8Array([0xff, 2]) }, { name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([5]) }]);
    await writeAll(path.join(one, 'other.safetensors'), [{ name: 'c', dtype: 'U8', shape: [1], data: new Uint8Array([6]) }]);
    let ck = await SafetensorsCheckpoint.open(one);
    expect(ck.files).toEqual([path.join(one, 'model.safetensors')]); // model*.safetensors win over other files
    expect(ck.names()).toEqual(['a', 'b']);
    expect([...(await ck.readF32('b'))]).toEqual([-1, 2]);
    await ck.close();

    await writeAll(path.join(one, 'model-00001-of-00002.safetensors'), [{ name: 'e', dtype: 'U8', shape: [1], data: new Uint8Array([8]) }]);
    ck = await SafetensorsCheckpoint.open(one);
    expect(ck.files.map((f) => path.basename(f))).toEqual(['model-00001-of-00002.safetensors', 'model.safetensors']); // llama.cpp: model*.safetensors, sorted
    expect(ck.names()).toEqual(['e', 'a', 'b']);
    await ck.close();
    await fs.rm(path.join(one, 'model.safetensors'));
    await fs.rm(path.join(one, 'model-00001-of-00002.safetensors'));
    await writeAll(path.join(one, 'adapter.safetensors'), [{ name: 'd', dtype: 'U8', shape: [1], data: new Uint8Array([7]) }]);
    ck = await SafetensorsCheckpoint.open(one);
    expect(ck.files.map((f) => path.basename(f))).toEqual(['adapter.safetensors', 'other.safetensors']);
    expect(ck.names()).toEqual(['d', 'c']);
    await ck.close();

    ck = await SafetensorsCheckpoint.open(path.join(one, 'other.safetensors'));
    expect(ck.dir).toBe(one);
    expect(ck.names()).toEqual(['c']);
    expect(Buffer.from(await ck.read('c'))[0]).toBe(6);
    await ck.close();
  });
});
