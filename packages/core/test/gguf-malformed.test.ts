// Damaged GGUFs are refused with a message that names the file and the problem.
// Each case starts from a valid file written by GgufWriter and breaks one thing in it.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GgufReader, GgufWriter, QtkError } from '../src/index.js';

let dir: string;
let good: Buffer;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-gguf-bad-'));
  const file = path.join(dir, 'good.gguf');
  const w = await GgufWriter.create(file, { alignment: 64 });
  w.addString('general.name', 'a small model');
  w.addArray('test.list', 'UINT32', [1, 2, 3]);
  w.addTensorInfo('a.weight', [32, 2], 'Q8_0');
  w.addTensorInfo('b.weight', [4], 'F32');
  await w.writeTensorData('a.weight', new Uint8Array(68).fill(7));
  await w.writeTensorData('b.weight', new Uint8Array(16).fill(9));
  await w.finish();
  good = await fs.readFile(file);
});
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

let n = 0;
async function writeBad(bytes: Buffer): Promise<string> {
  const file = path.join(dir, `bad-${n++}.gguf`);
  await fs.writeFile(file, bytes);
  return file;
}
async function refusal(bytes: Buffer, opts = {}): Promise<QtkError> {
  const file = await writeBad(bytes);
  const err = await GgufReader.open(file, opts).then(
    (r) => { void r.close(); throw new Error('expected the reader to refuse the file'); },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QtkError);
  expect((err as QtkError).message.startsWith(file + ':')).toBe(true);
  return err as QtkError;
}
/** Offset of the field after a tensor's name in its info record. */
function afterName(buf: Buffer, name: string): number {
  const at = buf.indexOf(Buffer.from(name));
  expect(at).toBeGreaterThan(0);
  return at + name.length;
}

describe('GgufReader refuses malformed files', () => {
  it('accepts the unmodified file', async () => {
    const r = await GgufReader.open(await writeBad(good));
    expect(r.tensors.map((t) => t.name)).toEqual(['a.weight', 'b.weight']);
    await r.close();
  });

  it('bad magic', async () => {
    const b = Buffer.from(good);
    b.write('GGML', 0, 'latin1');
    expect((await refusal(b)).message).toMatch(/is not a GGUF file \(starts with "GGML", expected "GGUF"\)/);
    expect((await refusal(Buffer.from('hello'))).message).toMatch(/not a GGUF file/);
  });

  it('unsupported versions, naming what is supported', async () => {
    for (const v of [1, 4]) {
      const b = Buffer.from(good);
      b.writeUInt32LE(v, 4);
      expect((await refusal(b)).message).toMatch(new RegExp(`GGUF version ${v}; supported versions are 2 and 3`));
    }
    const be = Buffer.from(good);
    be.writeUInt32BE(3, 4);
    expect((await refusal(be)).message).toMatch(/big-endian/);
  });

  it('truncated KV names the byte and the key', async () => {
    const at = good.indexOf(Buffer.from('a small model'));
    const b = good.subarray(0, at + 5);
    const msg = (await refusal(b)).message;
    expect(msg).toMatch(new RegExp(`truncated at byte ${at + 5} while reading key 'general.name'`));
    const arr = good.indexOf(Buffer.from('test.list'));
    expect((await refusal(good.subarray(0, arr + 'test.list'.length + 4 + 4 + 8 + 6))).message).toMatch(/truncated at byte \d+ while reading key 'test.list' \(array of 3 UINT32\)/);
  });

  it('tensor data past the end of the file', async () => {
    const msg = (await refusal(good.subarray(0, good.length - 64))).message;
    expect(msg).toMatch(/tensor 'b.weight' data ends at byte \d+, past the end of the file \(\d+ bytes\)/);
  });

  it('alignment that is not a power of two', async () => {
    const b = Buffer.from(good);
    const at = b.indexOf(Buffer.from('general.alignment')) + 'general.alignment'.length;
    expect(b.readUInt32LE(at)).toBe(4); // UINT32 tag
    expect(b.readUInt32LE(at + 4)).toBe(64);
    b.writeUInt32LE(48, at + 4);
    expect((await refusal(b)).message).toMatch(/alignment 48 \(key 'general.alignment'\) is not a power of two/);
    b.writeUInt32LE(5, at); // now INT32
    expect((await refusal(b)).message).toMatch(/'general.alignment' has type INT32; it must be UINT32/);
  });

  it('misaligned and non-consecutive tensor offsets', async () => {
    const b = Buffer.from(good);
    const off = afterName(b, 'b.weight') + 4 + 8 + 4; // n_dims, ne0, type
    expect(b.readBigUInt64LE(off)).toBe(128n);
    b.writeBigUInt64LE(130n, off);
    expect((await refusal(b)).message).toMatch(/tensor 'b.weight' has offset 130, not a multiple of the alignment 64/);
    b.writeBigUInt64LE(192n, off);
    expect((await refusal(b)).message).toMatch(/tensor 'b.weight' has offset 192, expected 128/);
  });

  it('unknown and removed ggml type ids', async () => {
    const typeAt = afterName(good, 'a.weight') + 4 + 16;
    expect(good.readUInt32LE(typeAt)).toBe(8); // Q8_0
    for (const [id, why] of [[4, /Q4_2\/Q4_3 were removed/], [32, /repacked types were removed/], [99, /ggml 0.23 defines ids 0, 1, 2, 3, 6/]] as const) {
      const b = Buffer.from(good);
      b.writeUInt32LE(id, typeAt);
      const msg = (await refusal(b)).message;
      expect(msg).toMatch(new RegExp(`tensor 'a.weight' has unknown ggml type id ${id}`));
      expect(msg).toMatch(why);
    }
  });

  it('ne0 not a multiple of the block size, and bad n_dims', async () => {
    const b = Buffer.from(good);
    const at = afterName(b, 'a.weight');
    b.writeBigUInt64LE(33n, at + 4);
    expect((await refusal(b)).message).toMatch(/tensor 'a.weight' has ne0 = 33, not a multiple of Q8_0's block size 32/);
    const c = Buffer.from(good);
    c.writeUInt32LE(5, at);
    expect((await refusal(c)).message).toMatch(/tensor 'a.weight' has 5 dimensions; ggml allows 1..4/);
  });

  it('unknown metadata value type', async () => {
    const b = Buffer.from(good);
    const at = b.indexOf(Buffer.from('general.name')) + 'general.name'.length;
    b.writeUInt32LE(13, at);
    expect((await refusal(b)).message).toMatch(/key 'general.name' has unknown value type 13 at byte \d+ \(known: 0..12\)/);
  });

  it('counts and lengths over the named limits', async () => {
    expect((await refusal(good, { maxArrayLength: 2 })).message).toMatch(/key 'test.list' is an array of 3 elements, over the limit 2 \(maxArrayLength\)/);
    expect((await refusal(good, { maxTensors: 1 })).message).toMatch(/tensor count 2 is over the limit 1 \(maxTensors\)/);
    expect((await refusal(good, { maxKv: 2 })).message).toMatch(/metadata key count 3 is over the limit 2 \(maxKv\)/);
    expect((await refusal(good, { maxStringBytes: 8 })).message).toMatch(/is a string of \d+ bytes, over the limit 8 \(maxStringBytes\)/);
    const b = Buffer.from(good);
    b.writeBigUInt64LE(0xffffffffffffn, 8); // tensor count
    expect((await refusal(b)).message).toMatch(/tensor count 281474976710655 is over the limit 1000000 \(maxTensors\)/);
  });

  it('a path that cannot be opened', async () => {
    await expect(GgufReader.open(path.join(dir, 'nope.gguf'))).rejects.toThrow(/nope\.gguf: cannot open \(no such file\)/);
    await expect(GgufReader.open(dir)).rejects.toThrow(QtkError);
  });
});
