// What the memory model needs to know about a model, from a config.json or a GGUF header alone (no
// weights read): the GGUF tensor table (names, shapes, stored types) and the sizes that set the
// KV cache, the recurrent state and the compute buffers.
import { fileError } from '../errors.js';
import { convertedTensorType, type Outtype } from '../arch/outtype.js';
import { ARCHITECTURES, resolveArchitecture } from '../arch/registry.js';
import type { HParams, JsonObject } from '../arch/hparams.js';
import type { LayerKind } from '../arch/types.js';
import type { GgmlTypeName } from '../ggml-types.js';

export interface ModelTensor {
  name: string;
  /** ggml dims, ne0 first. */
  ne: number[];
  /** Stored type (the converter's choice for a config; the file's for a GGUF). */
  type: GgmlTypeName;
}

/** Gated DeltaNet / Mamba-style state sizes (llama.cpp's ssm.* keys). */
export interface SsmShape {
  convKernel: number;
  /** ssm.inner_size: value heads × value head dim. */
  innerSize: number;
  /** ssm.group_count: key heads. */
  groupCount: number;
  /** ssm.state_size: key head dim. */
  stateSize: number;
  /** ssm.time_step_rank: value heads (training plans need it; serving does not). */
  valueHeads?: number;
}

export interface ModelShape {
  /** llama.cpp architecture (general.architecture). */
  arch: string;
  /** Trunk layers (without MTP blocks). */
  nLayer: number;
  /** MTP blocks appended after the trunk (weights only: the main context keeps no cache for them). */
  nMtp: number;
  /** Trunk layers with a KV cache. */
  nAttentionLayers: number;
  /** Trunk layers with a recurrent state. */
  nRecurrentLayers: number;
  nEmbd: number;
  nVocab: number;
  nHead: number;
  nHeadKv: number;
  headDimK: number;
  headDimV: number;
  nFf: number;
  ssm?: SsmShape;
}

export interface ModelDescription {
  shape: ModelShape;
  tensors: ModelTensor[];
  /** Bytes before the tensor data (metadata, tensor table); estimated for a config. */
  headerBytes: number;
  /** Where it came from, for messages. */
  source: string;
}

/** Architectures the memory model knows, by llama.cpp name (the unknown-architecture error lists them). */
export const MEMORY_ARCHITECTURES = ARCHITECTURES.map((a) => a.ggufArch);

const NEXT_STEP = 'Pass the config.json or GGUF of a model of one of these architectures';
const CONFIG_REFUSAL = { knownBy: 'The memory model (qtk plan, quantize --fit --ctx) knows', nextStep: NEXT_STEP };

/** GGUF metadata per vocabulary entry (token string, type, score or merge): measured ≈ 34 B on Qwen3 GGUFs. */
const HEADER_BYTES_PER_TOKEN = 40;
/** Per tensor in the GGUF tensor table: name, dims, type, offset. */
const HEADER_BYTES_PER_TENSOR = 96;

/** The tensors `qtk convert` writes for this config, with their ggml shapes and the converter's types. */
export function describeConfig(config: JsonObject, file: string, opts: { outtype?: Outtype; noMtp?: boolean } = {}): ModelDescription {
  const { arch, hparams: h } = resolveArchitecture(config, file, CONFIG_REFUSAL);
  const outtype = opts.outtype ?? 'f16';
  const trunk = arch.layerKinds(h);
  const hasMtpRules = arch.blockTensors.some((r) => r.layers?.includes('mtp'));
  const nMtp = opts.noMtp || !hasMtpRules ? 0 : h.int('mtp_num_hidden_layers', 0);
  const kinds: LayerKind[] = [...trunk, ...Array.from({ length: nMtp }, () => 'mtp' as const)];
  const tensors: ModelTensor[] = [];
  const add = (gguf: string, hfShape: readonly number[], keepF32 = false, squeeze = false) => {
    const dims = squeeze ? hfShape.filter((d) => d !== 1) : [...hfShape];
    const ne = dims.reverse();
    tensors.push({ name: gguf, ne, type: convertedTensorType(gguf, ne, outtype, keepF32) });
  };
  for (const r of arch.globalTensors) {
    if (r.optional?.(h)) continue;
    add(r.gguf, r.shape(h), r.transform?.keepF32, r.transform?.squeeze);
  }
  kinds.forEach((kind, i) => {
    for (const r of arch.blockTensors) {
      if (r.layers && !r.layers.includes(kind)) continue;
      if (!r.layers && kind !== 'attention') continue;
      if (r.optional?.(h)) continue;
      add(`blk.${i}.${r.gguf}`, r.shape(h), r.transform?.keepF32, r.transform?.squeeze);
    }
  });
  for (const t of arch.extraTensors?.(h) ?? []) tensors.push({ name: t.gguf, ne: [t.values.length], type: 'F32' });
  const shape = shapeFromConfig(arch.ggufArch, h, trunk, nMtp);
  return { shape, tensors, headerBytes: shape.nVocab * HEADER_BYTES_PER_TOKEN + tensors.length * HEADER_BYTES_PER_TENSOR, source: file };
}

function shapeFromConfig(ggufArch: string, h: HParams, trunk: LayerKind[], nMtp: number): ModelShape {
  const nHead = h.int('num_attention_heads');
  const headDim = h.headDim();
  const recurrent = trunk.filter((k) => k === 'linear').length;
  const ssm: SsmShape | undefined = recurrent > 0 ? {
    convKernel: h.int('linear_conv_kernel_dim'),
    innerSize: h.int('linear_num_value_heads') * h.int('linear_value_head_dim'),
    groupCount: h.int('linear_num_key_heads'),
    stateSize: h.int('linear_key_head_dim'),
    valueHeads: h.int('linear_num_value_heads'),
  } : undefined;
  return {
    arch: ggufArch,
    nLayer: trunk.length,
    nMtp,
    nAttentionLayers: trunk.length - recurrent,
    nRecurrentLayers: recurrent,
    nEmbd: h.int('hidden_size'),
    nVocab: h.int('vocab_size'),
    nHead,
    nHeadKv: h.int('num_key_value_heads', nHead),
    headDimK: headDim,
    headDimV: headDim,
    nFf: h.int('intermediate_size'),
    ssm,
  };
}

/** The same description from a GGUF's metadata and tensor table. */
export function describeGguf(
  file: string,
  kv: { get(key: string): unknown },
  tensors: readonly { name: string; ne: readonly number[]; type: GgmlTypeName }[],
  headerBytes: number,
): ModelDescription {
  const arch = kv.get('general.architecture');
  if (typeof arch !== 'string' || arch === '') {
    throw fileError(file, 'general.architecture is missing', 'Pass a GGUF written by qtk convert or llama.cpp, or the model\'s config.json');
  }
  if (!MEMORY_ARCHITECTURES.includes(arch)) {
    throw fileError(file, `architecture ${JSON.stringify(arch)} is not supported by the memory model`, `It knows: ${MEMORY_ARCHITECTURES.join(', ')}. ${NEXT_STEP}`);
  }
  const need = (key: string): number => {
    const v = first(kv.get(`${arch}.${key}`));
    if (v === undefined) throw fileError(file, `${arch}.${key} is missing`, 'Pass a GGUF written by qtk convert or llama.cpp, or the model\'s config.json');
    return v;
  };
  const opt = (key: string): number | undefined => first(kv.get(`${arch}.${key}`));
  const blockCount = need('block_count');
  const nMtp = opt('nextn_predict_layers') ?? 0;
  const nLayer = blockCount - nMtp;
  const nEmbd = need('embedding_length');
  const nHead = need('attention.head_count');
  const interval = opt('full_attention_interval');
  const recurrent = interval ? Array.from({ length: nLayer }, (_, i) => (i + 1) % interval !== 0).filter(Boolean).length : 0;
  const embd = tensors.find((t) => t.name === 'token_embd.weight');
  const tokens = kv.get('tokenizer.ggml.tokens');
  const nVocab = Array.isArray(tokens) ? tokens.length : (embd?.ne[1] ?? 0);
  if (nVocab === 0) throw fileError(file, 'neither tokenizer.ggml.tokens nor token_embd.weight gives the vocabulary size', 'Pass a complete GGUF model');
  const ssm: SsmShape | undefined = recurrent > 0 ? {
    convKernel: need('ssm.conv_kernel'), innerSize: need('ssm.inner_size'), groupCount: need('ssm.group_count'), stateSize: need('ssm.state_size'),
    valueHeads: opt('ssm.time_step_rank'),
  } : undefined;
  const shape: ModelShape = {
    arch, nLayer, nMtp, nAttentionLayers: nLayer - recurrent, nRecurrentLayers: recurrent, nEmbd, nVocab, nHead,
    nHeadKv: opt('attention.head_count_kv') ?? nHead,
    headDimK: opt('attention.key_length') ?? nEmbd / nHead,
    headDimV: opt('attention.value_length') ?? nEmbd / nHead,
    nFf: need('feed_forward_length'),
    ssm,
  };
  return { shape, tensors: tensors.map((t) => ({ name: t.name, ne: [...t.ne], type: t.type })), headerBytes, source: file };
}

function first(v: unknown): number | undefined {
  if (Array.isArray(v)) return v.length ? Number(v[0]) : undefined;
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' ? v : undefined;
}
