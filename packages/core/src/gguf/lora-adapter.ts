// llama.cpp's GGUF LoRA adapters (src/llama-adapter.cpp): general.type "adapter", adapter.type "lora",
// adapter.lora.alpha (f32; llama.cpp scales each pair by alpha / rank, rank = lora_b ne[0], or by 1 when
// alpha is 0), general.architecture = the base's; per target tensor `<name>.lora_a` ne [n_in, r] and
// `<name>.lora_b` ne [r, n_out]. Pairs whose scales disagree with one alpha carry the ratio in B.
import { decodeToF32 } from '../dtypes.js';
import { fileError } from '../errors.js';
import type { GgmlTypeName } from '../ggml-types.js';
import { GgufReader } from './reader.js';
import { GgufWriter } from './writer.js';

/**
 * One adapted weight. A and B keep PEFT's layouts, which are also GGUF-LoRA's bytes: A [rank, nIn]
 * row-major is ggml ne [nIn, rank]; B [nOut, rank] is ne [rank, nOut].
 */
export interface LoraPair {
  /** The target: an HF module path (`model.layers.3.linear_attn.in_proj_qkv`) or a GGUF tensor (`blk.3.attn_qkv.weight`). */
  readonly name: string;
  readonly rank: number;
  readonly nIn: number;
  readonly nOut: number;
  /** [rank, nIn], row-major. */
  readonly a: Float32Array;
  /** [nOut, rank], row-major. */
  readonly b: Float32Array;
  /** The multiplier of B·A: alpha / rank, or alpha / √rank under rsLoRA. */
  readonly scale: number;
}

export const GGUF_LORA_KEYS = {
  type: 'general.type',
  arch: 'general.architecture',
  adapterType: 'adapter.type',
  alpha: 'adapter.lora.alpha',
} as const;

const SUFFIX = { a: '.lora_a', b: '.lora_b' } as const;
const FLOAT_TYPES: readonly GgmlTypeName[] = ['F32', 'F16', 'BF16'];

export interface GgufLoraAdapter {
  readonly arch: string;
  readonly alpha: number;
  /** name = the base GGUF tensor the pair adapts, e.g. blk.3.attn_qkv.weight. */
  readonly pairs: readonly LoraPair[];
}

/** The alpha llama.cpp needs so that alpha / rank is each pair's scale, or undefined when one alpha cannot serve all. */
export function commonAlpha(pairs: readonly LoraPair[]): number | undefined {
  const alphas = pairs.map((p) => Math.fround(p.scale * p.rank));
  return alphas.every((a) => a === alphas[0]) ? alphas[0] : undefined;
}

export async function writeGgufLora(file: string, arch: string, pairs: readonly LoraPair[], opts: { overwrite?: boolean; name?: string } = {}): Promise<void> {
  if (pairs.length === 0) throw new Error('writeGgufLora: no LoRA pairs to write');
  // One alpha for the file; a pair with another scale multiplies its B by the ratio (rare: alpha_pattern, mixed rsLoRA ranks).
  const alpha = commonAlpha(pairs) ?? Math.fround(pairs[0]!.scale * pairs[0]!.rank);
  const w = await GgufWriter.create(file, { overwrite: opts.overwrite });
  try {
    w.addString(GGUF_LORA_KEYS.arch, arch);
    w.addString(GGUF_LORA_KEYS.type, 'adapter');
    if (opts.name) w.addString('general.name', opts.name);
    w.addString(GGUF_LORA_KEYS.adapterType, 'lora');
    w.addFloat32(GGUF_LORA_KEYS.alpha, alpha);
    for (const p of pairs) {
      w.addTensorInfo(p.name + SUFFIX.a, [p.nIn, p.rank], 'F32');
      w.addTensorInfo(p.name + SUFFIX.b, [p.rank, p.nOut], 'F32');
    }
    for (const p of pairs) {
      const ratio = p.scale / (alpha / p.rank);
      const b = Math.fround(ratio) === 1 ? p.b : p.b.map((x) => x * ratio);
      await w.writeTensorData(p.name + SUFFIX.a, new Uint8Array(p.a.buffer, p.a.byteOffset, p.a.byteLength));
      await w.writeTensorData(p.name + SUFFIX.b, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
    await w.finish();
  } catch (e) {
    await w.abort();
    throw e;
  }
}

export async function readGgufLora(file: string): Promise<GgufLoraAdapter> {
  const r = await GgufReader.open(file);
  try {
    const type = r.get<string>(GGUF_LORA_KEYS.type);
    if (type !== 'adapter') throw fileError(file, `general.type is ${JSON.stringify(type)}, expected "adapter"`, 'Give a GGUF LoRA adapter, not a model');
    const at = r.get<string>(GGUF_LORA_KEYS.adapterType);
    if (at !== 'lora') throw fileError(file, `adapter.type is ${JSON.stringify(at)}, expected "lora"`, 'Only LoRA adapters are supported');
    const arch = r.get<string>(GGUF_LORA_KEYS.arch);
    if (typeof arch !== 'string') throw fileError(file, 'has no general.architecture', 'Convert the adapter again against its base model');
    const alpha = Number(r.get<number>(GGUF_LORA_KEYS.alpha) ?? 0);
    const halves = new Map<string, { a?: string; b?: string }>();
    for (const t of r.tensors) {
      const half = t.name.endsWith(SUFFIX.a) ? 'a' : t.name.endsWith(SUFFIX.b) ? 'b' : undefined;
      if (!half) throw fileError(file, `tensor ${t.name} is neither a .lora_a nor a .lora_b`, 'The adapter is not a LoRA GGUF');
      const base = t.name.slice(0, -SUFFIX[half].length);
      halves.set(base, { ...halves.get(base), [half]: t.name });
    }
    const pairs: LoraPair[] = [];
    for (const [name, h] of halves) {
      if (!h.a || !h.b) throw fileError(file, `${h.a ?? h.b} has no ${h.a ? 'lora_b' : 'lora_a'} partner`, 'The adapter is incomplete: convert it again');
      const a = r.tensor(h.a);
      const b = r.tensor(h.b);
      for (const t of [a, b]) {
        if (t.ne.length !== 2) throw fileError(file, `${t.name} has ne [${t.ne}], expected 2 dimensions`, 'The adapter is corrupt: convert it again');
        if (!FLOAT_TYPES.includes(t.type)) throw fileError(file, `${t.name} is ${t.type}, expected F32, F16 or BF16`, 'Convert the adapter again in a float type');
      }
      const [nIn, rank] = a.ne as [number, number];
      const [rankB, nOut] = b.ne as [number, number];
      if (rank !== rankB) throw fileError(file, `rank mismatch for ${name}: ${h.a} has rank ${rank} (ne [${a.ne}]) but ${h.b} has rank ${rankB} (ne [${b.ne}])`, 'The adapter is corrupt: convert it again');
      pairs.push({
        name, rank, nIn, nOut,
        a: decodeToF32(a.type as 'F32' | 'F16' | 'BF16', await r.readTensor(a)),
        b: decodeToF32(b.type as 'F32' | 'F16' | 'BF16', await r.readTensor(b)),
        scale: alpha === 0 ? 1 : alpha / rank,
      });
    }
    return { arch, alpha, pairs };
  } finally {
    await r.close();
  }
}
