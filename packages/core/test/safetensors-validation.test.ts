// Every malformed file is refused with a QtkError that names the file, the offending value and the limit.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SafetensorsFile, SafetensorsCheckpoint, SafetensorsWriter, SAFETENSORS_LIMITS, QtkError } from '../src/index.js';

let dir: string;
beforeAll(async () => { dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-st-bad-')); });
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

let n = 0;
/** Writes <u64 length><header><data>; `header` may be an object, a string or raw bytes; `length` overrides the prefix. */
async function file(header: unknown, data: Uint8Array | number = 0, length?: bigint): Promise<string> {
  const h = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === 'string' ? header : JSON.stringify(header));
  const d = typeof data === 'number' ? new Uint8Array(data) : data;
  const buf = new Uint8Array(8 + h.length + d.length);
  new DataView(buf.buffer).setBigUint64(0, length ?? BigInt(h.length), true);
  buf.set(h, 8);
  buf.set(d, 8 + h.length);
  const p = path.join(dir, `bad-${n++}.safetensors`);
  await fs.writeFile(p, buf);
  return p;
}

async function refused(p: string, ...patterns: RegExp[]): Promise<QtkError> {
  const err = await SafetensorsFile.open(p).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(QtkError);
  const e = err as QtkError;
  expect(e.file).toBe(p);
  expect(e.message.startsWith(`${p}: `)).toBe(true);
  for (const re of patterns) expect(e.message).toMatch(re);
  expect(e.message).toMatch(/\. (Check|Convert|Re-save|Re-download) [^\n]*[a-z]$/); // ends with a next step
  return e;
}

const t = (dtype: string, shape: unknown, offsets: unknown) => ({ dtype, shape, data_offsets: offsets });

describe('safetensors header validation', () => {
  it('accepts a well-formed file (the control case)', async () => {
    const f = await SafetensorsFile.open(await file({ __metadata__: { format: 'pt' }, a: t('F32', [2], [0, 8]), b: t('U8', [3], [8, 11]) }, 11));
    expect([...f.tensors.keys()]).toEqual(['a', 'b']);
    expect(f.metadata).toEqual({ format: 'pt' });
    await f.close();
  });

  it('truncated file (shorter than 8 bytes)', async () => {
    const p = path.join(dir, 'short.safetensors');
    await fs.writeFile(p, new Uint8Array([1, 2, 3, 4, 5]));
    await refused(p, /file is 5 bytes/, /8-byte header length/);
    const empty = path.join(dir, 'empty.safetensors');
    await fs.writeFile(empty, '');
    await refused(empty, /file is 0 bytes/);
  });

  it('header length past end of file', async () => {
    await refused(await file({ a: t('U8', [1], [0, 1]) }, 1, 5000n), /header length 5000 bytes runs past the end of the file/, /the file is \d+ bytes/);
  });

  it('header over the cap', async () => {
    const cap = SAFETENSORS_LIMITS.maxHeaderBytes;
    await refused(await file('{}', 0, BigInt(cap) + 1n), new RegExp(`header length ${cap + 1} bytes is over the limit of ${cap} bytes`));
    await refused(await file('{}', 0, 0xffffffffffffffffn), /header length 18446744073709551615 bytes is over the limit/);
  });

  it('invalid UTF-8', async () => {
    const bytes = new TextEncoder().encode('{"a\u00e9":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}');
    const bad = bytes.slice();
    bad[3] = 0xff; // breaks the two-byte é
    await refused(await file(bad, 1), /not valid UTF-8/);
    const ok = await SafetensorsFile.open(await file(bytes, 1));
    expect([...ok.tensors.keys()]).toEqual(['a\u00e9']);
    await ok.close();
  });

  it('invalid JSON, and JSON that is not an object', async () => {
    await refused(await file('{"a": {"dtype": "U8",'), /header is not valid JSON/);
    await refused(await file('[1,2,3]'), /must be a JSON object of tensors, got \[1,2,3\]/);
    await refused(await file('null'), /must be a JSON object/);
  });

  it('__metadata__ that is not string -> string', async () => {
    await refused(await file({ __metadata__: { step: 3 } }), /key "step" has value 3/);
    await refused(await file({ __metadata__: ['x'] }), /__metadata__ must be an object/);
  });

  it('unknown dtype, listing the known ones', async () => {
    await refused(await file({ a: t('F8_E5M2', [1], [0, 1]) }, 1), /unknown dtype "F8_E5M2"/, /known dtypes are F64, F32, F16, BF16, F8_E4M3, I64, I32, I16, I8, U8, BOOL/);
  });

  it('shape that is not non-negative integers, and bad data_offsets', async () => {
    await refused(await file({ a: t('U8', [-1], [0, 0]) }), /shape \[-1\]/, /non-negative integers/);
    await refused(await file({ a: t('U8', [1.5], [0, 1]) }, 1), /shape \[1.5\]/);
    await refused(await file({ a: t('U8', '4', [0, 4]) }, 4), /shape "4"/);
    await refused(await file({ a: t('U8', [1], [1, 0]) }, 1), /data_offsets \[1,0\]/);
    await refused(await file({ a: t('U8', [1], [0]) }, 1), /data_offsets \[0\]/);
  });

  it('shape × dtype size different from the data_offsets span', async () => {
    await refused(await file({ a: t('F32', [2, 3], [0, 20]) }, 20), /shape \[2,3\] × F32 \(4 bytes\) is 24 bytes, but data_offsets \[0, 20\] span 20 bytes/);
  });

  it('overlapping tensors', async () => {
    await refused(await file({ a: t('U8', [8], [0, 8]), b: t('U8', [8], [4, 12]) }, 12), /tensor "b" \(data_offsets \[4, 12\]\) overlaps tensor "a" \(which ends at 8\)/);
  });

  it('holes between tensors and trailing bytes (refused, as the Rust crate does)', async () => {
    await refused(await file({ a: t('U8', [4], [0, 4]), b: t('U8', [4], [6, 10]) }, 10), /tensor "b" starts at data offset 6 but the previous tensor ends at 4/, /holes/);
    await refused(await file({ a: t('U8', [4], [2, 6]) }, 6), /starts at data offset 2/);
    await refused(await file({ a: t('U8', [4], [0, 4]) }, 7), /3 trailing bytes belong to no tensor/);
  });

  it('offsets out of the file', async () => {
    await refused(await file({ a: t('U8', [4], [0, 4]), b: t('U8', [100], [4, 104]) }, 10), /tensor "b" has data_offsets \[4, 104\] past the end of the data section \(10 bytes/);
  });

  it('a file that shrinks after open fails its reads with a clear error', async () => {
    const p = await file({ a: t('U8', [16], [0, 16]) }, 16);
    const f = await SafetensorsFile.open(p);
    await fs.truncate(p, 20);
    await expect(f.read('a')).rejects.toThrow(/unexpected end of file/);
    await f.close();
  });
});

describe('sharded checkpoint validation', () => {
  async function shard(name: string, sub: string, tensors: string[]): Promise<void> {
    const w = await SafetensorsWriter.create(path.join(sub, name), tensors.map((t) => ({ name: t, dtype: 'U8' as const, shape: [2] })));
    for (const t of tensors) await w.write(t, new Uint8Array([1, 2]));
    await w.finish();
  }

  it('index naming a missing shard', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'ckpt-'));
    await shard('model-00001-of-00002.safetensors', sub, ['a']);
    const index = path.join(sub, 'model.safetensors.index.json');
    await fs.writeFile(index, JSON.stringify({ metadata: {}, weight_map: { a: 'model-00001-of-00002.safetensors', b: 'model-00002-of-00002.safetensors' } }));
    const err = await SafetensorsCheckpoint.open(sub).then(() => undefined, (e: unknown) => e) as QtkError;
    expect(err).toBeInstanceOf(QtkError);
    expect(err.message).toMatch(new RegExp(`^${index.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: names shard "model-00002-of-00002.safetensors", which is missing`));
    expect(err.message).toMatch(/re-download the checkpoint/);
  });

  it('index mapping a tensor to a shard that lacks it', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'ckpt-'));
    await shard('s1.safetensors', sub, ['a']);
    await shard('s2.safetensors', sub, ['b']);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors', b: 's1.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/maps tensor "b" to s1.safetensors, but that shard has no such tensor/);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors', c: 's2.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/maps tensor "c" to s2.safetensors/);
    await shard('s3.safetensors', sub, ['d', 'e']);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: 's1.safetensors', d: 's3.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/does not list 1 tensor\(s\) found in the shards, e.g. "e" in s3.safetensors/);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../s1.safetensors' } }));
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/expected a shard file name inside the checkpoint folder/);
    await fs.writeFile(path.join(sub, 'model.safetensors.index.json'), '{"weight_map": 3}');
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/no "weight_map" object/);
  });

  it('a bad shard is reported by its own path; a duplicate tensor across shards is refused; an empty folder says what it expected', async () => {
    const sub = await fs.mkdtemp(path.join(dir, 'ckpt-'));
    await shard('a.safetensors', sub, ['x']);
    await shard('b.safetensors', sub, ['x']);
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(/b.safetensors: holds tensor "x", which .*a.safetensors also holds/);
    await fs.writeFile(path.join(sub, 'b.safetensors'), 'junk');
    await expect(SafetensorsCheckpoint.open(sub)).rejects.toThrow(new RegExp(`${path.join(sub, 'b.safetensors')}: file is 4 bytes`));
    const empty = await fs.mkdtemp(path.join(dir, 'empty-'));
    await expect(SafetensorsCheckpoint.open(empty)).rejects.toThrow(/has no model.safetensors.index.json, no model.safetensors and no other \*.safetensors file/);
    await expect(SafetensorsCheckpoint.open(path.join(dir, 'nope'))).rejects.toThrow(QtkError);
  });
});
