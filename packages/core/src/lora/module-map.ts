// The one mapping between LoRA parameters in Hugging Face module space (PEFT's names and shapes:
// lora_A [r, in], lora_B [out, r]) and the GGUF tensors the engine and llama.cpp hold. Everything is
// derived from the architecture tables: GGUF names, shapes and the axis permutations the converter
// applies (the DeltaNet V-head reorder, llama's RoPE un-permute). A row permutation of W is the same
// permutation of B's rows; a column permutation of W is the same permutation of A's columns, because
// P_r (W + B A) P_c = P_r W P_c + (P_r B)(A P_c).
import { fileError, QtkError } from '../errors.js';
import { HParams, type JsonObject } from '../arch/hparams.js';
import { llama } from '../arch/llama.js';
import { qwen2 } from '../arch/qwen2.js';
import { qwen3 } from '../arch/qwen3.js';
import { qwen3_5 } from '../arch/qwen3_5.js';
import type { ArchDefinition, LayerKind, TensorRule } from '../arch/types.js';

export const LORA_TARGET_GROUPS = ['attn', 'gdn', 'mlp'] as const;
export type LoraTargetGroup = (typeof LORA_TARGET_GROUPS)[number];

/** Every LoRA-adaptable linear, by its module path inside a decoder block (HF names). */
export const LORA_MODULES = [
  { group: 'attn', module: 'self_attn.q_proj' },
  { group: 'attn', module: 'self_attn.k_proj' },
  { group: 'attn', module: 'self_attn.v_proj' },
  { group: 'attn', module: 'self_attn.o_proj' },
  { group: 'gdn', module: 'linear_attn.in_proj_qkv' },
  { group: 'gdn', module: 'linear_attn.in_proj_z' },
  { group: 'gdn', module: 'linear_attn.in_proj_a' },
  { group: 'gdn', module: 'linear_attn.in_proj_b' },
  { group: 'gdn', module: 'linear_attn.out_proj' },
  { group: 'mlp', module: 'mlp.gate_proj' },
  { group: 'mlp', module: 'mlp.up_proj' },
  { group: 'mlp', module: 'mlp.down_proj' },
] as const satisfies readonly { group: LoraTargetGroup; module: string }[];

/** The last component of a module path: what PEFT's `target_modules` lists ('q_proj', 'in_proj_qkv'). */
export type LoraModuleName = (typeof LORA_MODULES)[number]['module'] extends `${string}.${infer N}` ? N : never;
export const LORA_MODULE_NAMES = LORA_MODULES.map((m) => m.module.split('.').pop()!) as LoraModuleName[];

export interface LoraTarget {
  readonly layer: number;
  readonly group: LoraTargetGroup;
  /** Short module name, as in PEFT's target_modules: 'q_proj', 'in_proj_qkv', 'down_proj'. */
  readonly name: LoraModuleName;
  /** Full module path in the HF model, as PEFT names it: 'model.language_model.layers.3.linear_attn.in_proj_qkv'. */
  readonly module: string;
  /** The GGUF tensor this adapts: 'blk.3.attn_qkv.weight'. */
  readonly tensor: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
  /** GGUF row i is HF row rowPerm[i] (of W, so of B). null = identity. */
  readonly rowPerm: Int32Array | null;
  /** GGUF column i is HF column colPerm[i] (of W, so of A). null = identity. */
  readonly colPerm: Int32Array | null;
}

export interface LoraTargetOptions {
  /** Groups to include (default all three). */
  readonly groups?: readonly LoraTargetGroup[];
  /** Short module names to include (default all); intersected with `groups`. */
  readonly modules?: readonly string[];
  /**
   * The HF class whose module tree PEFT wraps: its layers live under `model.language_model.layers`
   * for the multimodal *ForConditionalGeneration classes, under `model.layers` otherwise.
   * Default: the architecture's first class (Qwen3_5ForConditionalGeneration for qwen3_5).
   */
  readonly hfArchitecture?: string;
}

const BY_GGUF_ARCH: Readonly<Record<string, ArchDefinition>> = { qwen35: qwen3_5, qwen3, qwen2, llama };
const BY_MODEL_TYPE: Readonly<Record<string, ArchDefinition>> = { qwen3_5, qwen3, qwen2, llama };

/** The architecture table for an HF model_type ('qwen3_5') or a GGUF architecture ('qwen35'). */
export function loraArchitecture(name: string): ArchDefinition {
  const a = BY_MODEL_TYPE[name] ?? BY_GGUF_ARCH[name];
  if (!a) throw new QtkError(`LoRA targets: architecture '${name}' is not supported. Supported: ${Object.keys(BY_MODEL_TYPE).join(', ')} (GGUF: ${Object.keys(BY_GGUF_ARCH).join(', ')}).`);
  return a;
}

/** Where PEFT finds decoder layer i for this HF class. */
export function hfLayerPrefix(hfArchitecture: string): string {
  return hfArchitecture.endsWith('ForConditionalGeneration') ? 'model.language_model.layers' : 'model.layers';
}

const DEFAULT_HF_ARCH: Readonly<Record<string, string>> = {
  qwen3_5: 'Qwen3_5ForConditionalGeneration',
  qwen3: 'Qwen3ForCausalLM',
  qwen2: 'Qwen2ForCausalLM',
  llama: 'LlamaForCausalLM',
};

/**
 * Every LoRA target of the trunk (MTP blocks are never trained), in layer order then LORA_MODULES order.
 * `h` is the HF config (or `hparamsFromGguf`'s equivalent).
 */
export function loraTargets(arch: ArchDefinition | string, h: HParams, opts: LoraTargetOptions = {}): LoraTarget[] {
  const a = typeof arch === 'string' ? loraArchitecture(arch) : arch;
  const groups = new Set(opts.groups ?? LORA_TARGET_GROUPS);
  for (const g of groups) if (!(LORA_TARGET_GROUPS as readonly string[]).includes(g)) throw new QtkError(`LoRA target group '${g}' is unknown. Use ${LORA_TARGET_GROUPS.join(', ')}.`);
  const names = opts.modules ? new Set(opts.modules) : null;
  if (names) for (const n of names) if (!(LORA_MODULE_NAMES as string[]).includes(n)) throw new QtkError(`LoRA target module '${n}' is unknown. Use some of ${LORA_MODULE_NAMES.join(', ')}.`);
  const prefix = hfLayerPrefix(opts.hfArchitecture ?? DEFAULT_HF_ARCH[a.modelType] ?? a.hfArchitectures[0]!);
  const kinds = a.layerKinds(h);
  const out: LoraTarget[] = [];
  kinds.forEach((kind, layer) => {
    for (const m of LORA_MODULES) {
      const name = m.module.split('.').pop() as LoraModuleName;
      if (!groups.has(m.group) || (names && !names.has(name))) continue;
      const rule = findRule(a, `${m.module}.weight`, kind);
      if (!rule) continue;
      const [outFeatures, inFeatures] = rule.shape(h) as [number, number];
      const p = rule.transform?.permute;
      const perm = p ? p.perm(h) : null;
      out.push({
        layer, group: m.group, name,
        module: `${prefix}.${layer}.${m.module}`,
        tensor: `blk.${layer}.${rule.gguf}`,
        inFeatures, outFeatures,
        rowPerm: p?.axis === 'rows' ? perm : null,
        colPerm: p?.axis === 'cols' ? perm : null,
      });
    }
  });
  return out;
}

function findRule(a: ArchDefinition, hf: string, kind: LayerKind): TensorRule | undefined {
  return a.blockTensors.find((r) => r.hf === hf && (r.layers ?? ['attention']).includes(kind));
}

/** B_gguf = rows of B_hf ([out, r] row-major) taken in rowPerm order. */
export function permuteLoraB(b: Float32Array, rank: number, rowPerm: Int32Array | null): Float32Array {
  if (!rowPerm) return b;
  const out = new Float32Array(b.length);
  for (let i = 0; i < rowPerm.length; i++) out.set(b.subarray(rowPerm[i]! * rank, (rowPerm[i]! + 1) * rank), i * rank);
  return out;
}

/** A_gguf = columns of A_hf ([r, in] row-major) taken in colPerm order. */
export function permuteLoraA(a: Float32Array, inFeatures: number, colPerm: Int32Array | null): Float32Array {
  if (!colPerm) return a;
  const out = new Float32Array(a.length);
  for (let r = 0; r < a.length / inFeatures; r++) for (let c = 0; c < inFeatures; c++) out[r * inFeatures + c] = a[r * inFeatures + colPerm[c]!]!;
  return out;
}

/** The inverse of permuteLoraB: a GGUF-space B (or its gradient) back to HF rows. */
export function unpermuteLoraB(b: Float32Array, rank: number, rowPerm: Int32Array | null): Float32Array {
  if (!rowPerm) return b;
  const out = new Float32Array(b.length);
  for (let i = 0; i < rowPerm.length; i++) out.set(b.subarray(i * rank, (i + 1) * rank), rowPerm[i]! * rank);
  return out;
}

/** The inverse of permuteLoraA. */
export function unpermuteLoraA(a: Float32Array, inFeatures: number, colPerm: Int32Array | null): Float32Array {
  if (!colPerm) return a;
  const out = new Float32Array(a.length);
  for (let r = 0; r < a.length / inFeatures; r++) for (let c = 0; c < inFeatures; c++) out[r * inFeatures + colPerm[c]!] = a[r * inFeatures + c]!;
  return out;
}

/**
 * The HF config keys the architecture tables read, rebuilt from GGUF metadata (`get` returns the value
 * of a full key such as 'qwen35.ssm.group_count'). For qwen35: ssm.group_count = key heads,
 * ssm.time_step_rank = value heads, ssm.state_size = key head dim, ssm.inner_size / time_step_rank = value
 * head dim; block_count includes the MTP blocks (nextn_predict_layers).
 */
export function hparamsFromGguf(get: (key: string) => unknown, file: string): HParams {
  const ggufArch = String(get('general.architecture'));
  const a = BY_GGUF_ARCH[ggufArch];
  if (!a) throw fileError(file, `has architecture '${ggufArch}', which has no LoRA target table`, `Use a ${Object.keys(BY_GGUF_ARCH).join(', ')} GGUF`);
  const num = (key: string, fallback?: number): number => {
    const v = get(`${ggufArch}.${key}`);
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n === 'number' && Number.isFinite(n)) return n;
    if (v === undefined && fallback !== undefined) return fallback;
    throw fileError(file, `'${ggufArch}.${key}' is ${v === undefined ? 'missing' : String(v)}`, 'Convert the model again with qtk convert');
  };
  const heads = num('attention.head_count');
  const hidden = num('embedding_length');
  const c: JsonObject = {
    model_type: a.modelType,
    hidden_size: hidden,
    intermediate_size: num('feed_forward_length'),
    num_hidden_layers: num('block_count') - num('nextn_predict_layers', 0),
    num_attention_heads: heads,
    num_key_value_heads: num('attention.head_count_kv', heads),
    head_dim: num('attention.key_length', hidden / heads),
  };
  if (a === qwen3_5) {
    const nV = num('ssm.time_step_rank');
    Object.assign(c, {
      linear_num_key_heads: num('ssm.group_count'),
      linear_num_value_heads: nV,
      linear_key_head_dim: num('ssm.state_size'),
      linear_value_head_dim: num('ssm.inner_size') / nV,
      linear_conv_kernel_dim: num('ssm.conv_kernel'),
      full_attention_interval: num('full_attention_interval', 4),
    });
  }
  return new HParams(c, file);
}
