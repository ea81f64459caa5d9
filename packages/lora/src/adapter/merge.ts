// `qtk lora merge`: W' = W + s · scale · B · A for every adapted tensor of a base GGUF, computed in f32,
// one tensor at a time; every other tensor is copied (or converted to the float output type). The result
// is an ordinary GGUF with the base's metadata, ready for `qtk quantize`.
import { createProgress, decodeToF32, encodeFromF32, GgufReader, GgufWriter, GGML_TYPES, type GgmlTypeName, type GgufTensorInfo } from '@qtk/core';
import { getCodec } from '@qtk/quantize';
import { openAdapterBase } from './base.js';
import { loadAdapterForBase } from './load.js';
import { loraDelta, type LoraPair } from './types.js';

export type MergeOutType = 'f32' | 'f16' | 'bf16';
const OUT_TYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const satisfies Record<MergeOutType, GgmlTypeName>;
/** llama_ftype of a file whose matrices are all of one float type. */
const FILE_TYPE = { F32: 0, F16: 1, BF16: 32 } as const;
const FLOAT: readonly GgmlTypeName[] = ['F32', 'F16', 'BF16'];
const COPY_PIECE = 64 << 20;

export interface MergeAdapter {
  path: string;
  /** Multiplier on the adapter's own scale (default 1). */
  scale?: number;
}

export interface MergeOptions {
  base: string;
  adapters: readonly MergeAdapter[];
  output: string;
  /** Type of merged (and, when given, all other matrix) tensors; default the base's float type, F16 for a quantized base. */
  outtype?: MergeOutType;
  overwrite?: boolean;
  log?: (line: string) => void;
}

export interface MergeResult {
  merged: number;
  copied: number;
  bytes: number;
  warnings: string[];
}

/** base + s·delta in f32, element by element (the same expression whatever space the delta was built in). */
export function addScaledDelta(w: Float32Array, delta: Float32Array, s: number): void {
  for (let i = 0; i < w.length; i++) w[i] = w[i]! + Math.fround(s * delta[i]!);
}

function dequantize(t: GgufTensorInfo, bytes: Uint8Array): Float32Array {
  const n = t.ne.reduce((a, b) => a * b, 1);
  if (FLOAT.includes(t.type)) return decodeToF32(t.type as 'F32' | 'F16' | 'BF16', bytes);
  const codec = getCodec(t.type);
  if (!codec) throw new Error(`no codec for ${t.type}`);
  const out = new Float32Array(n);
  codec.dequantizeBlocks(bytes, out, n);
  return out;
}

function outTypeFor(t: GgufTensorInfo, adapted: boolean, outtype: GgmlTypeName | undefined): GgmlTypeName {
  const vector = t.ne.filter((d) => d > 1).length < 2 || t.name.includes('ssm_conv1d');
  if (vector) return FLOAT.includes(t.type) ? t.type : 'F32';
  if (outtype) return outtype;
  if (FLOAT.includes(t.type)) return t.type;
  return adapted || GGML_TYPES[t.type].quantized ? 'F16' : t.type;
}

export async function mergeLora(opts: MergeOptions): Promise<MergeResult> {
  const log = opts.log ?? (() => {});
  const base = await openAdapterBase(opts.base);
  const byTensor = new Map<string, { pair: LoraPair; s: number }[]>();
  for (const a of opts.adapters) {
    for (const pair of await loadAdapterForBase(a.path, base)) {
      byTensor.set(pair.name, [...(byTensor.get(pair.name) ?? []), { pair, s: a.scale ?? 1 }]);
    }
  }
  const r = await GgufReader.open(opts.base);
  const warnings: string[] = [];
  const outtype = opts.outtype ? OUT_TYPES[opts.outtype] : undefined;
  const plan = r.tensors.map((t) => ({ t, adapted: byTensor.has(t.name), type: outTypeFor(t, byTensor.has(t.name), outtype) }));
  const dequantized = plan.filter((p) => GGML_TYPES[p.t.type].quantized && p.type !== p.t.type);
  if (dequantized.length > 0) {
    warnings.push(`the base is quantized (${[...new Set(dequantized.map((p) => p.t.type))].join(', ')}): merging dequantizes it and writes ${[...new Set(dequantized.map((p) => p.type))].join(', ')}; merging into a 4-bit model loses quality, so merge into the F16 model and quantize the result instead`);
  }
  const types = new Set(plan.filter((p) => p.t.ne.filter((d) => d > 1).length >= 2).map((p) => p.type));
  const fileType = types.size === 1 && [...types][0]! in FILE_TYPE ? FILE_TYPE[[...types][0] as keyof typeof FILE_TYPE] : undefined;
  const changed = plan.some((p) => p.type !== p.t.type);
  const w = await GgufWriter.create(opts.output, { overwrite: opts.overwrite, alignment: r.alignment === 32 ? undefined : r.alignment });
  const progress = createProgress({ title: 'merging', total: plan.reduce((a, p) => a + p.t.byteLength, 0), kind: 'bytes' });
  let bytes = 0;
  try {
    for (const kv of r.kv.values()) {
      if (kv.key === 'general.alignment') continue;
      if (kv.key === 'general.file_type' && changed && fileType !== undefined) w.addUint32(kv.key, fileType);
      else w.addKV(kv);
    }
    for (const p of plan) w.addTensorInfo(p.t.name, [...p.t.ne], p.type);
    for (const p of plan) {
      if (!p.adapted && p.type === p.t.type) {
        for (let off = 0; off < p.t.byteLength; off += COPY_PIECE) {
          const chunk = await r.readTensorRange(p.t, off, Math.min(COPY_PIECE, p.t.byteLength - off));
          await w.writeTensorData(p.t.name, chunk);
        }
      } else {
        const values = dequantize(p.t, await r.readTensor(p.t));
        for (const { pair, s } of byTensor.get(p.t.name) ?? []) addScaledDelta(values, loraDelta(pair), s);
        await w.writeTensorData(p.t.name, encodeFromF32(values, p.type as 'F32' | 'F16' | 'BF16'));
      }
      bytes += p.t.byteLength;
      progress.tick(p.t.byteLength, p.t.name);
    }
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  } finally {
    progress.done();
    await r.close();
  }
  for (const line of warnings) log(`warning: ${line}`);
  return { merged: plan.filter((p) => p.adapted).length, copied: plan.filter((p) => !p.adapted).length, bytes, warnings };
}
