// `qtk export hf`: a GGUF (optionally with LoRA adapters merged) back to a Hugging Face checkpoint — the
// original names, shapes and value conventions, through the inverse of each transform convert applies
// (rows and columns un-permuted, norm −1, ssm_a → A_log = log(−a), conv1d unsqueezed). The original
// checkpoint supplies config.json, tokenizer files and the tensors a text GGUF does not hold (vision
// tower, MTP under --no-mtp), copied as they are. Written one tensor at a time into shards + index,
// inside a temporary folder renamed onto the output at the end.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { planTensors, type PlannedTensor } from '@qtk/convert';
import {
  createProgress, onInterrupt, decodeToF32, encodeFromF32, GgufReader, QtkError, resolveArchitecture, SafetensorsCheckpoint,
  SAFETENSORS_DTYPES, type GgufTensorInfo, type SafetensorsDtype,
} from '@qtk/core';
import { getCodec } from '@qtk/quantize';
import { openAdapterBase } from '../adapter/base.js';
import { loadAdapterForBase } from '../adapter/load.js';
import { addScaledDelta } from '../adapter/merge.js';
import { loraDelta, type LoraPair } from '../adapter/types.js';
import { invertValues, unpermuteCols, unpermuteRows } from './inverse.js';
import { writeShards } from './sharded-writer.js';

export const FLOAT = ['F32', 'F16', 'BF16'] as const;
export type FloatType = (typeof FLOAT)[number];

export interface ExportHfOptions {
  gguf: string;
  /** The checkpoint the GGUF was converted from: config, tokenizer and non-text tensors come from it. */
  hf: string;
  output: string;
  adapters?: readonly { path: string; scale?: number }[];
  /** Tensor dtype; default the GGUF tensor's float type (BF16 for quantized tensors). */
  dtype?: FloatType;
  maxShardBytes?: number;
  overwrite?: boolean;
  log?: (line: string) => void;
}

interface OutTensor {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  bytes: number;
  from: { gguf: GgufTensorInfo; plan: PlannedTensor } | { copy: string };
}

function toF32(t: GgufTensorInfo, bytes: Uint8Array): Float32Array {
  if ((FLOAT as readonly string[]).includes(t.type)) return decodeToF32(t.type as FloatType, bytes);
  const n = t.ne.reduce((a, b) => a * b, 1);
  const codec = getCodec(t.type);
  if (!codec) throw new QtkError(`${t.name}: ggml type ${t.type} has no dequantizer in qtk. Export from an F16/BF16/F32 GGUF.`);
  const out = new Float32Array(n);
  codec.dequantizeBlocks(bytes, out, n);
  return out;
}

export async function exportHf(opts: ExportHfOptions): Promise<{ files: string[]; tensors: number; copied: number; bytes: number }> {
  const log = opts.log ?? (() => {});
  const out = path.resolve(opts.output);
  if (await fs.stat(out).then(() => true, () => false)) {
    if (!opts.overwrite) throw new QtkError(`${out}: already exists. Pass --force to replace it, or choose another output folder.`, { file: out });
  }
  const cfgPath = path.join(opts.hf, 'config.json');
  const config = JSON.parse(await fs.readFile(cfgPath, 'utf8').catch((e: Error) => {
    throw new QtkError(`${cfgPath}: cannot be read (${e.message}). Pass --hf <the checkpoint the GGUF was converted from>.`, { file: cfgPath });
  })) as Record<string, unknown>;
  const { arch, hparams } = resolveArchitecture(config, cfgPath);
  const r = await GgufReader.open(opts.gguf);
  const ck = await SafetensorsCheckpoint.open(opts.hf);
  const tmp = `${out}.tmp-${process.pid}`;
  const off = onInterrupt(async () => {
    await fs.rm(tmp, { recursive: true, force: true });
    return `removed the partial ${tmp}`;
  }, 'export hf');
  try {
    const ggufArch = r.get<string>('general.architecture');
    if (ggufArch !== arch.ggufArch) throw new QtkError(`${opts.gguf}: architecture ${ggufArch}, but ${cfgPath} is ${arch.modelType} (${arch.ggufArch}). Pass the checkpoint this GGUF was converted from.`, { file: opts.gguf });
    const pairs = new Map<string, { pair: LoraPair; s: number }[]>();
    if (opts.adapters && opts.adapters.length > 0) {
      const base = await openAdapterBase(opts.gguf);
      for (const a of opts.adapters) for (const pair of await loadAdapterForBase(a.path, base)) pairs.set(pair.name, [...(pairs.get(pair.name) ?? []), { pair, s: a.scale ?? 1 }]);
    }
    const plan = new Map(planTensors(ck, arch, hparams, 'f32', false).tensors.filter((t) => t.hfName !== '').map((t) => [t.hfName, t]));
    const tensors: OutTensor[] = [];
    let fromOriginal = 0;
    for (const name of ck.names()) {
      const p = plan.get(name);
      const g = p && r.hasTensor(p.ggufName) ? r.tensor(p.ggufName) : undefined;
      if (p && g) {
        const dtype: FloatType = opts.dtype ?? ((FLOAT as readonly string[]).includes(g.type) ? (g.type as FloatType) : 'BF16');
        const shape = [...p.srcShape];
        tensors.push({ name, dtype, shape, bytes: shape.reduce((a, b) => a * b, SAFETENSORS_DTYPES[dtype].bytes), from: { gguf: g, plan: p } });
      } else {
        if (name.endsWith('.weight_scale_inv') && plan.has(name.replace(/_scale_inv$/, ''))) continue; // FP8 scales: the weight is exported dequantized
        const info = ck.info(name);
        tensors.push({ name, dtype: info.dtype, shape: [...info.shape], bytes: info.byteLength, from: { copy: name } });
        fromOriginal++;
      }
    }
    if (fromOriginal > 0) log(`copying ${fromOriginal} tensors the GGUF does not hold (vision tower, MTP, buffers) from ${opts.hf}`);
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.mkdir(tmp, { recursive: true });
    const progress = createProgress({ title: 'exporting', total: tensors.reduce((a, t) => a + t.bytes, 0), kind: 'bytes' });
    let written: { files: string[]; total: number };
    try {
      written = await writeShards(tmp, tensors, {
        maxShardBytes: opts.maxShardBytes,
        bytesOf: async (t) => ('copy' in t.from ? ck.read(t.from.copy) : encodeFromF32(await hfValues(r, t.from.gguf, t.from.plan, pairs.get(t.from.gguf.name)), t.dtype as FloatType)),
        onWritten: (t) => progress.tick(t.bytes, t.name),
      });
    } finally {
      progress.done();
    }
    const { files, total } = written;
    for (const f of await fs.readdir(opts.hf)) {
      if (f.endsWith('.safetensors') || f === 'model.safetensors.index.json' || f.startsWith('.')) continue;
      const src = path.join(opts.hf, f);
      if (!(await fs.stat(src)).isFile()) continue;
      if (f === 'config.json') await fs.writeFile(path.join(tmp, f), `${JSON.stringify(exportedConfig(config), null, 2)}\n`);
      else await fs.copyFile(src, path.join(tmp, f));
      files.push(f);
    }
    if (opts.overwrite) await fs.rm(out, { recursive: true, force: true });
    await fs.rename(tmp, out);
    return { files, tensors: tensors.length, copied: fromOriginal, bytes: total };
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    off();
    await r.close();
    await ck.close();
  }
}

/** The tensor in HF layout: dequantized, adapters merged (in GGUF space), transforms undone. */
export async function hfValues(r: GgufReader, g: GgufTensorInfo, p: PlannedTensor, adapters?: { pair: LoraPair; s: number }[]): Promise<Float32Array> {
  let v = toF32(g, await r.readTensor(g));
  for (const { pair, s } of adapters ?? []) addScaledDelta(v, loraDelta(pair), s);
  const cols = p.shape.length <= 1 ? 1 : p.shape.slice(1).reduce((a, b) => a * b, 1);
  v = unpermuteCols(v, cols, p.colPerm);
  v = unpermuteRows(v, cols, p.rowPerm);
  invertValues(p.value, v);
  return v;
}

/** Weights leave dequantized: an FP8 checkpoint's quantization_config no longer applies. */
export function exportedConfig(config: Record<string, unknown>): Record<string, unknown> {
  const c = structuredClone(config);
  delete c.quantization_config;
  if (c.text_config && typeof c.text_config === 'object') delete (c.text_config as Record<string, unknown>).quantization_config;
  return c;
}

