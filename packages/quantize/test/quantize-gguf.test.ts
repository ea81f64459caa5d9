// `qtk quantize` end to end on small GGUFs written here: the chosen types, the bytes (equal to ggml's
// own quantizer on the same rows), metadata, order, imatrix use, and every refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile, readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, GgufWriter, QtkError, decodeToF32, encodeFromF32, ggmlRowBytes } from '@qtk/core';
import { gguf as hfGguf } from '@huggingface/gguf';
import { quantizeGguf, defaultOutputPath } from '../src/quantize-gguf.js';
import { readImatrix } from '../src/imatrix.js';
import { ggmlOrOptOut } from './ggml-or-optout.js';
import { qwen35Layout, type LayoutTensor } from './layouts.js';
import { writeModel } from './gguf-helpers.js';
import { importanceWeights } from './rows.js';

const ggml = ggmlOrOptOut();
const DIMS = { layers: 4, mtp: true, hidden: 256, ffn: 256, vocab: 32, nHead: 2, nHeadKv: 1, headDim: 64, nVHead: 4, nKHead: 2, vHeadDim: 32, kHeadDim: 32 };
const KV = { block_count: 5, 'attention.head_count': 2, 'attention.head_count_kv': 1 };
let dir: string;
let model: string;
let values: Map<string, Float32Array>;
const layout: LayoutTensor[] = qwen35Layout(DIMS);
const log: string[] = [];
const quiet = (s: string) => log.push(s);

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-quantize-'));
  model = path.join(dir, 'tiny-F16.gguf');
  values = await writeModel(model, 'qwen35', KV, layout);
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

/** What ggml itself makes of a tensor's (f16-rounded) rows. */
function ggmlBytes(name: string, type: Parameters<NonNullable<typeof ggml>['quantizeChunk']>[0], imatrix?: Float32Array): Uint8Array {
  const t = layout.find((x) => x.name === name)!;
  const f16 = decodeToF32(t.type === 'F32' ? 'F32' : 'F16', encodeFromF32(values.get(name)!, t.type === 'F32' ? 'F32' : 'F16'));
  const rows = f16.length / t.ne[0]!;
  const out = new Uint8Array(rows * ggmlRowBytes(type, t.ne[0]!));
  ggml!.quantizeChunk(type, f16, out, rows, t.ne[0]!, imatrix);
  return out;
}

describe.skipIf(ggml === null)('quantizeGguf', () => {
  it('Q4_K_M: types, metadata, order, and bytes equal to ggml; the TS engine writes the identical file', async () => {
    const outA = path.join(dir, 'a.gguf');
    const outB = path.join(dir, 'b.gguf');
    const a = await quantizeGguf({ input: model, output: outA, bits: 4, engine: 'ggml', threads: 2, log: quiet });
    const b = await quantizeGguf({ input: model, output: outB, preset: 'q4_k_m', engine: 'ts', log: quiet });
    expect(a.preset).toBe('Q4_K_M');
    expect(Buffer.compare(await readAll(outA), await readAll(outB))).toBe(0);
    expect(b.engine).toBe('ts');

    const r = await GgufReader.open(outA);
    try {
      expect(r.get('general.file_type')).toBe(15);
      expect(r.get('general.quantization_version')).toBe(2);
      expect(r.get('general.name')).toBe('tiny');
      expect(r.get('qwen35.block_count')).toBe(5);
      expect(r.tensors.map((t) => t.name).slice(0, 4)).toEqual(['output.weight', 'output_norm.weight', 'token_embd.weight', 'blk.0.attn_gate.weight']);
      const type = (n: string) => r.tensor(n).type;
      expect(type('output.weight')).toBe('Q6_K');
      // use_more_bits(i, 5): 5/8 = 0, 7·5/8 = 4, so i ≥ 4 or i % 3 == 2
      expect(type('blk.0.attn_qkv.weight')).toBe('Q4_K');
      expect(type('blk.1.attn_qkv.weight')).toBe('Q4_K');
      expect(type('blk.2.attn_qkv.weight')).toBe('Q6_K');
      expect(type('blk.4.attn_v.weight')).toBe('Q6_K'); // ≥ 4
      expect(type('blk.0.ssm_conv1d.weight')).toBe('F32');
      for (const [name, t] of [['blk.1.attn_qkv.weight', 'Q4_K'], ['output.weight', 'Q6_K'], ['blk.2.ffn_down.weight', 'Q6_K'], ['blk.0.ffn_down.weight', 'Q4_K'], ['blk.3.attn_q.weight', 'Q4_K']] as const) {
        expect(Buffer.compare(Buffer.from(await r.readTensor(name)), Buffer.from(ggmlBytes(name, t))), name).toBe(0);
      }
      // unquantized tensors are copied byte for byte
      expect(Array.from(decodeToF32('F32', await r.readTensor('blk.0.attn_norm.weight')))).toEqual(Array.from(values.get('blk.0.attn_norm.weight')!));
    } finally {
      await r.close();
    }
    // an independent parser reads the file and agrees on the types
    const parsed = await hfGguf(outA, { allowLocalFile: true });
    expect(parsed.tensorInfos.find((t) => t.name === 'output.weight')!.dtype).toBe(14);
    expect(a.bitsPerWeight).toBeGreaterThan(4.5);
    expect(a.tensors).toHaveLength(layout.length);
  });

  it('imatrix in the GGUF format: weights reach the quantizer (bytes equal ggml with the same weights)', async () => {
    const imFile = path.join(dir, 'imatrix.gguf');
    const names = layout.filter((t) => t.ne.length === 2 && !t.name.includes('conv1d')).map((t) => t.name);
    const sums = new Map<string, Float32Array>();
    const w = await GgufWriter.create(imFile, { overwrite: true });
    w.add('general.type', 'STRING', 'imatrix');
    w.addArray('imatrix.datasets', 'STRING', ['tiny.txt']);
    w.add('imatrix.chunk_count', 'UINT32', 3);
    w.add('imatrix.chunk_size', 'UINT32', 512);
    names.forEach((n, i) => {
      const ne0 = layout.find((t) => t.name === n)!.ne[0]!;
      sums.set(n, importanceWeights(ne0, 50 + i).map((x) => x * 7));
      w.addTensorInfo(`${n}.in_sum2`, [ne0, 1], 'F32');
      w.addTensorInfo(`${n}.counts`, [1, 1], 'F32');
    });
    for (const n of names) {
      await w.writeTensorData(`${n}.in_sum2`, new Uint8Array(sums.get(n)!.buffer));
      await w.writeTensorData(`${n}.counts`, new Uint8Array(Float32Array.of(7).buffer));
    }
    await w.finish();

    const im = await readImatrix(imFile);
    expect(im.format).toBe('gguf');
    expect(im.chunkCount).toBe(3);
    expect(im.datasets).toEqual(['tiny.txt']);
    const ffnDown = im.entries.get('blk.1.ffn_down.weight')!;
    expect(ffnDown[5]).toBe(Math.fround(sums.get('blk.1.ffn_down.weight')![5]! / 7));

    const out = path.join(dir, 'iq4.gguf');
    const res = await quantizeGguf({ input: model, output: out, preset: 'IQ4_XS', imatrix: imFile, threads: 2, log: quiet });
    expect(res.tensors.find((t) => t.name === 'blk.1.attn_gate.weight')!.imatrix).toBe(true);
    const r = await GgufReader.open(out);
    try {
      const name = 'blk.1.attn_gate.weight';
      expect(r.tensor(name).type).toBe('IQ4_XS');
      const withW = ggmlBytes(name, 'IQ4_XS', im.entries.get(name));
      expect(Buffer.compare(Buffer.from(await r.readTensor(name)), Buffer.from(withW))).toBe(0);
      expect(Buffer.compare(Buffer.from(withW), Buffer.from(ggmlBytes(name, 'IQ4_XS')))).not.toBe(0);
      // with an imatrix, IQ4_XS does not bump the first ffn_down layers to Q5_K
      expect(r.tensor('blk.0.ffn_down.weight').type).toBe('IQ4_XS');
    } finally {
      await r.close();
    }
  });

  it('legacy .dat imatrix: parsed (sums ÷ ncall) and a wrong length is refused naming the tensor', async () => {
    const dat = path.join(dir, 'imatrix.dat');
    const entry = (name: string, ncall: number, vals: number[]) => {
      const nb = Buffer.from(name);
      const b = Buffer.alloc(4 + nb.length + 8 + 4 * vals.length);
      b.writeInt32LE(nb.length, 0); nb.copy(b, 4);
      b.writeInt32LE(ncall, 4 + nb.length); b.writeInt32LE(vals.length, 8 + nb.length);
      vals.forEach((v, i) => b.writeFloatLE(v, 12 + nb.length + 4 * i));
      return b;
    };
    const head = Buffer.alloc(4); head.writeInt32LE(2);
    const trailer = Buffer.alloc(8 + 5); trailer.writeInt32LE(10, 0); trailer.writeInt32LE(5, 4); trailer.write('c.txt', 8);
    await writeFile(dat, Buffer.concat([head, entry('blk.0.ffn_up.weight', 4, Array.from({ length: 256 }, (_, i) => i + 1)), entry('blk.0.ffn_gate.weight', 2, [1, 2, 3]), trailer]));
    const im = await readImatrix(dat);
    expect(im.format).toBe('dat');
    expect(im.entries.get('blk.0.ffn_up.weight')![3]).toBe(1);
    expect(im.chunkCount).toBe(10);
    expect(im.datasets).toEqual(['c.txt']);
    // the imatrix is named as the file at fault, with the model tensor's shape and expected length
    const err = await quantizeGguf({ input: model, output: path.join(dir, 'bad.gguf'), bits: 4, imatrix: dat, log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as QtkError).file).toBe(dat);
    expect((err as Error).message.startsWith(`${dat}: entry blk.0.ffn_gate.weight has 3 values, but that tensor of ${model} is [256, 256] and needs 256`)).toBe(true);
    expect((await readdir(dir)).filter((f) => f.startsWith('bad'))).toEqual([]);
  });

  it('--tensor-type PATTERN=TYPE overrides; the default output name follows the preset', async () => {
    const out = defaultOutputPath(model, 'Q8_0');
    expect(path.basename(out)).toBe('tiny-Q8_0.gguf');
    const res = await quantizeGguf({ input: model, bits: 8, tensorTypes: ['ffn_(up|gate)=q4_0', 'output\\.weight=f16'], log: quiet });
    expect(res.output).toBe(out);
    const types = new Map(res.tensors.map((t) => [t.name, t.outType]));
    expect(types.get('blk.2.ffn_up.weight')).toBe('Q4_0');
    expect(types.get('blk.2.ffn_gate.weight')).toBe('Q4_0');
    expect(types.get('blk.2.ffn_down.weight')).toBe('Q8_0');
    expect(types.get('output.weight')).toBe('F16');
    await expect(quantizeGguf({ input: model, bits: 8, log: quiet })).rejects.toThrow(/exists|overwrite|force/i);
    await quantizeGguf({ input: model, bits: 8, force: true, log: quiet });
  });

  it('refuses an existing output before printing any warning', async () => {
    const seen: string[] = [];
    await quantizeGguf({ input: model, output: path.join(dir, 'iq4-warn.gguf'), preset: 'IQ4_XS', log: (s) => seen.push(s) });
    expect(seen.some((s) => /^warning: \d+ of \d+ tensor\(s\) required fallback/.test(s))).toBe(true); // this model does warn
    const existing = path.join(dir, 'existing.gguf');
    await writeFile(existing, 'keep me');
    const refused: string[] = [];
    await expect(quantizeGguf({ input: model, output: existing, preset: 'IQ4_XS', log: (s) => refused.push(s) })).rejects.toThrow(/already exists\. Pass --force/);
    expect(refused).toEqual([]);
    expect(await readFile(existing, 'utf8')).toBe('keep me');
  });

  it('refuses NaN/Inf rows naming the tensor and row, and leaves no output behind', async () => {
    const bad = path.join(dir, 'nan-F16.gguf');
    await writeModel(bad, 'qwen35', KV, layout, (t, v) => { if (t.name === 'blk.2.ffn_up.weight') v[256 * 7 + 3] = NaN; });
    const err = await quantizeGguf({ input: bad, bits: 4, log: quiet }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect(String((err as Error).message)).toMatch(/blk\.2\.ffn_up\.weight row 7 holds NaN at column 3/);
    expect((await readdir(dir)).filter((f) => f.startsWith('nan-Q4'))).toEqual([]);
  });

  it('an already-quantized input needs --allow-requantize (and then warns)', async () => {
    const q = path.join(dir, 'q8.gguf');
    await quantizeGguf({ input: model, output: q, bits: 8, log: quiet });
    await expect(quantizeGguf({ input: q, output: path.join(dir, 'rq.gguf'), bits: 4, log: quiet })).rejects.toThrow(/requantizing is disabled.*--allow-requantize/);
    const seen: string[] = [];
    const res = await quantizeGguf({ input: q, output: path.join(dir, 'rq.gguf'), bits: 4, allowRequantize: true, log: (s) => seen.push(s) });
    expect(seen.some((s) => /warning: requantizing Q8_0/.test(s))).toBe(true);
    expect(res.tensors.find((t) => t.name === 'blk.1.attn_gate.weight')!.inType).toBe('Q8_0');
    expect(res.tensors.find((t) => t.name === 'blk.1.attn_gate.weight')!.outType).toBe('Q4_K');
  });

  it('refuses unknown presets, bad --bits and unsupported override types with the choices listed', async () => {
    await expect(quantizeGguf({ input: model, bits: 7, log: quiet })).rejects.toThrow(/--bits 7 is not supported \(choose 2, 3, 4, 5, 6, 8\)/);
    await expect(quantizeGguf({ input: model, preset: 'Q9_K', log: quiet })).rejects.toThrow(/Unknown preset Q9_K/);
    await expect(quantizeGguf({ input: model, bits: 4, tensorTypes: ['attn=IQ2_XXS'], log: quiet })).rejects.toThrow(/IQ2_XXS is not supported/);
  });
});

async function readAll(file: string): Promise<Buffer> {
  const { readFile } = await import('node:fs/promises');
  return readFile(file);
}
