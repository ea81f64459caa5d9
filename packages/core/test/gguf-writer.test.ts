// GgufWriter is a state machine (metadata → tensor infos → data → finish) with typed, range-checked
// values; misuse is refused with "expected X, got Y", and failures leave no temp file behind.
import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GgufReader, GgufWriter, QtkError } from '../src/index.js';

let dir: string;
beforeEach(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-gguf-w-')); });
afterEach(async () => { await fs.rm(dir, { recursive: true, force: true }); });

describe('GgufWriter state machine', () => {
  it('refuses out-of-order calls', async () => {
    const w = await GgufWriter.create(path.join(dir, 'm.gguf'));
    w.addUint32('a.count', 1);
    await expect(w.writeTensorData('x', new Uint8Array(4))).rejects.toThrow(/expected metadata, tensor infos or finish\(\), got tensor data for 'x'/);
    w.addTensorInfo('x', [4], 'F32');
    w.addTensorInfo('y', [2], 'F16');
    expect(() => w.addUint32('late.key', 2)).toThrow(/expected tensor infos or tensor data, got metadata key 'late.key'/);
    await expect(w.writeTensorData('y', new Uint8Array(4))).rejects.toThrow(/expected tensor data for 'x' \(tensor 1 of 2\), got 'y'/);
    await expect(w.writeTensorData('z', new Uint8Array(4))).rejects.toThrow(/got 'z' \(no tensor info has that name\)/);
    const first = w.writeTensorData('x', new Uint8Array(4));
    await expect(w.writeTensorData('x', new Uint8Array(4))).rejects.toThrow(/expected the previous writeTensorData\(\) to be awaited/);
    await first;
    await w.writeTensorData('x', new Uint8Array(4));
    expect(() => w.addTensorInfo('late', [4], 'F32')).toThrow(/expected tensor data for 'x' or finish\(\), got tensor info 'late'/);
    await expect(w.finish()).rejects.toThrow(/expected tensor data for 'x' \(tensor 1 of 2, 8 of 16 bytes written\), got finish\(\)/);
    await expect(w.writeTensorData('x', new Uint8Array(12))).rejects.toThrow(/tensor 'x' \(F32 \[4\]\) takes 16 bytes; a chunk of 12 bytes overruns it by 4/);
    await w.writeTensorData('x', new Uint8Array(8));
    await w.writeTensorData('y', new Uint8Array(4));
    await expect(w.writeTensorData('y', new Uint8Array(1))).rejects.toThrow(/expected finish\(\), got tensor data for 'y'/);
    await w.finish();
    await expect(w.finish()).rejects.toThrow(/expected nothing \(the writer is finished\), got finish\(\)/);
    expect(() => w.addString('k', 'v')).toThrow(/the writer is finished/);
    expect(await fs.readdir(dir)).toEqual(['m.gguf']);
    const r = await GgufReader.open(path.join(dir, 'm.gguf'));
    expect(r.tensors.map((t) => t.offset)).toEqual([0, 32]);
    await r.close();
  });

  it('range-checks values against their declared type', async () => {
    const w = await GgufWriter.create(path.join(dir, 'm.gguf'));
    expect(() => w.add('k', 'UINT8', 256)).toThrow(/key 'k': 256 is outside UINT8's range 0..255/);
    expect(() => w.add('k', 'UINT32', -1)).toThrow(/outside UINT32's range/);
    expect(() => w.add('k', 'INT32', 2 ** 31)).toThrow(/outside INT32's range/);
    expect(() => w.add('k', 'UINT64', -1n)).toThrow(/outside UINT64's range/);
    expect(() => w.add('k', 'INT64', 2n ** 63n)).toThrow(/outside INT64's range/);
    expect(() => w.add('k', 'UINT32', 1.5)).toThrow(/UINT32 needs an integer, got number 1.5/);
    expect(() => w.add('k', 'FLOAT32', 1e39)).toThrow(/1e\+39 overflows FLOAT32/);
    expect(() => w.add('k', 'BOOL', 1)).toThrow(/BOOL needs true or false/);
    expect(() => w.add('k', 'STRING', 5)).toThrow(/STRING needs a string/);
    expect(() => w.add('k', 'ARRAY', 5)).toThrow(/use addArray/);
    expect(() => w.addArray('k', 'INT8', [1, 200])).toThrow(/key 'k' element 1: 200 is outside INT8's range/);
    expect(() => w.addArray('k', 'ARRAY', [])).toThrow(/arrays of arrays/);
    expect(() => w.add('', 'UINT8', 1)).toThrow(/non-empty string/);
    w.addUint32('k', 1);
    expect(() => w.addUint32('k', 2)).toThrow(/duplicate metadata key 'k'/);
    expect(() => w.add('general.alignment', 'UINT32', 48)).toThrow(QtkError);
    expect(() => w.add('general.alignment', 'UINT64', 64n)).toThrow(/must be UINT32/);
    await w.abort();
    await expect(GgufWriter.create(path.join(dir, 'x.gguf'), { alignment: 24 })).rejects.toThrow(/alignment 24 is not a power of two/);
    expect(await fs.readdir(dir)).toEqual([]);
  });

  it('validates tensor infos', async () => {
    const w = await GgufWriter.create(path.join(dir, 'm.gguf'));
    expect(() => w.addTensorInfo('n'.repeat(64), [4], 'F32')).toThrow(/name is 64 bytes; ggml allows at most 63/);
    w.addTensorInfo('n'.repeat(63), [4], 'F32');
    expect(() => w.addTensorInfo('n'.repeat(63), [4], 'F32')).toThrow(/duplicate tensor name/);
    expect(() => w.addTensorInfo('t', [1, 1, 1, 1, 1], 'F32')).toThrow(/needs 1..4 dimensions/);
    expect(() => w.addTensorInfo('t', [], 'F32')).toThrow(/needs 1..4 dimensions/);
    expect(() => w.addTensorInfo('t', [100, 2], 'Q8_0')).toThrow(/row length 100 is not a multiple of Q8_0's block size 32/);
    expect(() => w.addTensorInfo('t', [256, -1], 'Q4_K')).toThrow(/dimension -1 is not a non-negative integer/);
    expect(() => w.addTensorInfo('t', [4], 'Q4_2' as never)).toThrow(/unknown ggml type Q4_2/);
    await w.abort();
  });

  it('abort and failed writes leave no temp file; an existing file needs overwrite', async () => {
    const target = path.join(dir, 'm.gguf');
    const w = await GgufWriter.create(target);
    w.addTensorInfo('x', [4], 'F32');
    await w.writeTensorData('x', new Uint8Array(8));
    expect((await fs.readdir(dir)).length).toBe(1); // the temp file
    await w.abort();
    await w.abort();
    expect(await fs.readdir(dir)).toEqual([]);

    await fs.writeFile(target, 'keep me');
    await expect(GgufWriter.create(target)).rejects.toThrow(/already exists/);
    const w2 = await GgufWriter.create(target, { overwrite: true });
    w2.addString('general.name', 'new');
    await w2.finish();
    const r = await GgufReader.open(target);
    expect(r.get('general.name')).toBe('new');
    await r.close();
  });

  it('turns ENOSPC into a QtkError naming the output and removes the partial file', async () => {
    const target = path.join(dir, 'full.gguf');
    const w = await GgufWriter.create(target);
    w.addTensorInfo('x', [1024], 'F32');
    await w.writeTensorData('x', new Uint8Array(1024));
    // Simulate the disk filling up mid-tensor (a real full disk is not available in a test).
    const handle = (w as unknown as { file: { handle: { write: unknown } } }).file.handle;
    handle.write = () => Promise.reject(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    // Small chunks are gathered in memory, so the failure surfaces when finish() flushes them.
    await w.writeTensorData('x', new Uint8Array(1024));
    await w.writeTensorData('x', new Uint8Array(2048));
    const err = await w.finish().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as QtkError).message).toMatch(new RegExp(`^${target.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: the disk is full while writing \\(the file needs \\d+ bytes; \\d+ bytes were written\\); the partial file was removed\\. Free space in `));
    expect(await fs.readdir(dir)).toEqual([]);
    await expect(w.finish()).rejects.toThrow(/the writer is aborted/);
  });

  it('gathers many small chunks and steps over zero-byte tensors', async () => {
    const target = path.join(dir, 'rows.gguf');
    const w = await GgufWriter.create(target);
    w.addTensorInfo('empty.first', [0], 'F32');
    w.addTensorInfo('rows', [32, 1000], 'Q8_0');
    w.addTensorInfo('empty.mid', [256, 0], 'Q4_K');
    w.addTensorInfo('tail', [3], 'I32');
    w.addTensorInfo('empty.last', [0, 4], 'F16');
    const row = new Uint8Array(34);
    for (let i = 0; i < 1000; i++) {
      row.fill(i & 0xff); // the same buffer reused for every row: the writer must copy
      await w.writeTensorData('rows', row);
    }
    await w.writeTensorData('tail', Uint8Array.from([1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]));
    await w.finish();
    const r = await GgufReader.open(target);
    const rows = await r.readTensor('rows');
    for (let i = 0; i < 1000; i += 97) expect(rows[i * 34 + 5]).toBe(i & 0xff);
    expect(Array.from(new Int32Array((await r.readTensor('tail')).buffer))).toEqual([1, 2, 3]);
    expect(r.tensor('empty.last').byteLength).toBe(0);
    expect(r.tensors.map((t) => t.offset)).toEqual([0, 0, 34016, 34016, 34048]);
    await r.close();
  });

  it('refuses a folder it cannot write to, saying so', async () => {
    if (process.getuid?.() === 0) {
      // root ignores permission bits; the EACCES translation is shared with openAtomic's own test.
      await expect(GgufWriter.create(path.join(dir, 'no-such-dir', 'm.gguf'))).rejects.toThrow(/cannot write in .*no-such-dir.*Choose an output folder you can write to/);
      return;
    }
    const ro = path.join(dir, 'ro');
    await fs.mkdir(ro, { mode: 0o555 });
    await expect(GgufWriter.create(path.join(ro, 'm.gguf'))).rejects.toThrow(/cannot write in .*Choose an output folder you can write to/);
  });
});
