// llama.cpp importance matrices: the GGUF format written by llama-imatrix (tensors `<name>.in_sum2`
// [ne0, n_mat] and `<name>.counts` [1, n_mat], keys imatrix.datasets/chunk_count/chunk_size) and the
// legacy .dat binary. Values are turned into per-column weights exactly as tools/quantize/quantize.cpp
// load_imatrix does: GGUF sums ÷ round(count) (1 where the count is 0); legacy sums ÷ ncall.
import { open } from 'node:fs/promises';
import { GgufReader, QtkError, fileError } from '@qtk/core';

export interface Imatrix {
  /** The file it was read from, for messages. */
  file: string;
  format: 'gguf' | 'dat';
  /** Tensor name (e.g. blk.0.ffn_down.weight) → importance weights, ne0·n_mat values. */
  entries: Map<string, Float32Array>;
  datasets: string[];
  chunkCount: number;
  chunkSize: number;
}

const IMATRIX_KEYS = { datasets: 'imatrix.datasets', chunkCount: 'imatrix.chunk_count', chunkSize: 'imatrix.chunk_size' } as const;
const MAX_LEGACY_ENTRIES = 1 << 20;
const MAX_LEGACY_NAME = 4096;

/** std::lround for non-negative counts: halves away from zero. */
const lround = (x: number): number => Math.sign(x) * Math.floor(Math.abs(x) + 0.5);

export async function readImatrix(path: string): Promise<Imatrix> {
  const fh = await open(path, 'r').catch((e: unknown) => {
    throw fileError(path, `cannot open the importance matrix (${(e as Error).message})`, 'Check the --imatrix path');
  });
  const magic = Buffer.alloc(4);
  try {
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const imatrix = magic.toString('latin1') === 'GGUF' ? await readGgufImatrix(path) : await readLegacyImatrix(path);
  for (const [name, v] of imatrix.entries) {
    for (let i = 0; i < v.length; i++) {
      if (!Number.isFinite(v[i]!)) {
        throw fileError(path, `entry ${name} holds a non-finite value (${v[i]}) at index ${i}`, 'Recompute the importance matrix');
      }
    }
  }
  return imatrix;
}

async function readGgufImatrix(path: string): Promise<Imatrix> {
  const r = await GgufReader.open(path);
  try {
    const datasets = r.get<string[]>(IMATRIX_KEYS.datasets);
    const chunkCount = r.get<number>(IMATRIX_KEYS.chunkCount);
    const chunkSize = r.get<number>(IMATRIX_KEYS.chunkSize);
    if (datasets === undefined || chunkCount === undefined || chunkSize === undefined) {
      throw fileError(path, `missing imatrix metadata (${Object.values(IMATRIX_KEYS).join(', ')} are all required)`, 'Use an imatrix written by llama-imatrix or qtk');
    }
    if (r.tensors.length === 0) throw fileError(path, 'the importance matrix holds no tensors', 'Recompute it');
    const pairs = new Map<string, { sums?: (typeof r.tensors)[number]; counts?: (typeof r.tensors)[number] }>();
    for (const t of r.tensors) {
      const m = /^(.*)\.(in_sum2|counts)$/.exec(t.name);
      if (!m) continue;
      const p = pairs.get(m[1]!) ?? {};
      if (m[2] === 'in_sum2') p.sums = t;
      else p.counts = t;
      pairs.set(m[1]!, p);
    }
    const entries = new Map<string, Float32Array>();
    for (const [name, { sums, counts }] of pairs) {
      if (!sums || !counts) throw fileError(path, `mismatched sums and counts for ${name}`, 'Recompute the importance matrix');
      if (sums.type !== 'F32' || counts.type !== 'F32') {
        throw fileError(path, `sums and counts for ${name} must be F32, got ${sums.type} and ${counts.type}`, 'Recompute the importance matrix');
      }
      const s = toF32(await r.readTensor(sums));
      const c = toF32(await r.readTensor(counts));
      if (c.length === 0 || s.length % c.length !== 0) {
        throw fileError(path, `${name}: ${s.length} sums do not split into ${c.length} matrices`, 'Recompute the importance matrix');
      }
      const ne0 = s.length / c.length;
      const out = new Float32Array(s.length);
      for (let j = 0; j < c.length; j++) {
        const count = Math.fround(lround(c[j]!));
        for (let i = 0; i < ne0; i++) out[j * ne0 + i] = count > 0 ? s[j * ne0 + i]! / count : 1;
      }
      entries.set(name, out);
    }
    return { file: path, format: 'gguf', entries, datasets: [...datasets], chunkCount: Number(chunkCount), chunkSize: Number(chunkSize) };
  } finally {
    await r.close();
  }
}

function toF32(bytes: Uint8Array): Float32Array {
  const copy = bytes.byteOffset % 4 === 0 ? bytes : bytes.slice();
  return new Float32Array(copy.buffer, copy.byteOffset, copy.byteLength / 4);
}

async function readLegacyImatrix(path: string): Promise<Imatrix> {
  const { readFile } = await import('node:fs/promises');
  const buf = await readFile(path);
  let at = 0;
  const need = (n: number, what: string): void => {
    if (at + n > buf.length) throw fileError(path, `truncated legacy imatrix while reading ${what} at byte ${at} (file is ${buf.length} bytes)`, 'Recompute the importance matrix');
  };
  const i32 = (what: string): number => { need(4, what); const v = buf.readInt32LE(at); at += 4; return v; };
  const nEntries = i32('the entry count');
  if (nEntries < 1 || nEntries > MAX_LEGACY_ENTRIES) {
    throw fileError(path, `not a GGUF and not a legacy imatrix (entry count ${nEntries}, expected 1..${MAX_LEGACY_ENTRIES})`, 'Pass an imatrix written by llama-imatrix');
  }
  const entries = new Map<string, Float32Array>();
  for (let e = 0; e < nEntries; e++) {
    const len = i32(`the name length of entry ${e}`);
    if (len < 0 || len > MAX_LEGACY_NAME) throw fileError(path, `entry ${e} has a name of ${len} bytes (limit ${MAX_LEGACY_NAME})`, 'The file is damaged');
    need(len, `the name of entry ${e}`);
    const name = buf.toString('utf8', at, at + len).replace(/\0.*$/s, '');
    at += len;
    const ncall = i32(`ncall of ${name}`);
    const nval = i32(`the value count of ${name}`);
    if (nval < 1) throw fileError(path, `entry ${name} has ${nval} values`, 'The file is damaged');
    need(nval * 4, `the values of ${name}`);
    const out = new Float32Array(nval);
    const fncall = Math.fround(ncall);
    for (let i = 0; i < nval; i++) {
      const s = buf.readFloatLE(at + 4 * i);
      out[i] = ncall > 0 ? s / fncall : s;
    }
    at += nval * 4;
    entries.set(name, out);
  }
  // Optional trailer: chunk count, then the dataset name.
  let chunkCount = 0;
  const datasets: string[] = [];
  if (at + 4 <= buf.length) {
    chunkCount = buf.readInt32LE(at);
    at += 4;
    if (at + 4 <= buf.length) {
      const len = buf.readInt32LE(at);
      at += 4;
      if (len > 0 && at + len <= buf.length) datasets.push(buf.toString('utf8', at, at + len));
    }
  }
  return { file: path, format: 'dat', entries, datasets, chunkCount, chunkSize: 0 };
}

/**
 * The weights for one tensor of `model` (ne0·ne2 values: one row of weights per expert), or undefined
 * when the imatrix has no entry. A wrong length is an error, except for token_embd, which llama.cpp skips.
 */
export function imatrixFor(imatrix: Imatrix, model: string, name: string, ne: readonly number[]): Float32Array | undefined {
  const w = imatrix.entries.get(name);
  if (w === undefined) return undefined;
  const want = ne[0]! * (ne[2] ?? 1);
  if (w.length !== want) {
    if (name === 'token_embd.weight' || name === 'per_layer_token_embd.weight') return undefined;
    // the imatrix is the file at fault: it was computed on another model (or another size of it)
    throw fileError(
      imatrix.file,
      `entry ${name} has ${w.length} values, but that tensor of ${model} is [${ne.join(', ')}] and needs ${want} (ne0 ${ne[0]} × experts ${ne[2] ?? 1})`,
      `Pass an importance matrix computed on this model (qtk imatrix ${model} --data FILE), or leave out --imatrix`,
    );
  }
  return w;
}
