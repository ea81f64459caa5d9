// Model hyper-parameters read from GGUF metadata, with the defaults llama.cpp's loader applies
// (src/llama-model.cpp, src/models/qwen35.cpp). Errors name the file and the key.
import { fileError, type GgufReader } from '@qtk/core';

/** Architectures the engine builds graphs for; the file per architecture is in this folder. */
export const ENGINE_ARCHS = ['qwen3', 'qwen35'] as const;
export type EngineArch = (typeof ENGINE_ARCHS)[number];

export interface BaseParams {
  arch: EngineArch;
  /** Decoder layers executed in the main pass (MTP blocks excluded). */
  nLayer: number;
  nEmbd: number;
  nFf: number;
  nHead: number;
  nHeadKv: number;
  headDim: number;
  nVocab: number;
  eps: number;
  ropeBase: number;
  /** Rotated dims per head (all of them for qwen3, partial for qwen35). */
  nRot: number;
  nCtxTrain: number;
  /** token_embd is reused as the output matrix. */
  tiedOutput: boolean;
}

export interface Qwen3Params extends BaseParams {
  arch: 'qwen3';
}

export interface Qwen35Params extends BaseParams {
  arch: 'qwen35';
  ropeSections: [number, number, number, number];
  convKernel: number;
  /** GDN: value dim total (Hv * dv), state size (dk = dv), key heads, value heads. */
  ssmInner: number;
  ssmState: number;
  ssmGroups: number;
  ssmHeads: number;
  /** Per layer: Gated DeltaNet (true) or gated attention (false). */
  recurrent: boolean[];
}

export type ModelParams = Qwen3Params | Qwen35Params;

const NEXT = 'Convert the model again with qtk convert or a current llama.cpp';

export function readModelParams(r: GgufReader): ModelParams {
  const archRaw = r.get<string>('general.architecture');
  if (!(ENGINE_ARCHS as readonly string[]).includes(String(archRaw))) {
    throw fileError(r.path, `has architecture '${String(archRaw)}'; the engine runs ${ENGINE_ARCHS.join(', ')}`, 'Use a Qwen3 or Qwen3.5/3.6 GGUF');
  }
  const arch = archRaw as EngineArch;
  const num = (key: string, fallback?: number): number => {
    const v = r.get<unknown>(`${arch}.${key}`);
    if (v === undefined) {
      if (fallback !== undefined) return fallback;
      throw fileError(r.path, `has no '${arch}.${key}' metadata`, NEXT);
    }
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isFinite(n)) throw fileError(r.path, `'${arch}.${key}' is ${String(v)}, expected a number (per-layer arrays are not supported)`, NEXT);
    return n;
  };
  const blockCount = num('block_count');
  const nextn = num('nextn_predict_layers', 0);
  const nEmbd = num('embedding_length');
  const nHead = num('attention.head_count');
  const headDim = num('attention.key_length', nEmbd / nHead);
  const valueLength = num('attention.value_length', headDim);
  if (valueLength !== headDim) throw fileError(r.path, `has key_length ${headDim} but value_length ${valueLength}`, 'Only equal key and value head sizes are supported');
  const embd = r.tensor('token_embd.weight');
  const base: BaseParams = {
    arch,
    nLayer: blockCount - nextn,
    nEmbd,
    nFf: num('feed_forward_length'),
    nHead,
    nHeadKv: num('attention.head_count_kv', nHead),
    headDim,
    nVocab: embd.ne[1]!,
    eps: num('attention.layer_norm_rms_epsilon'),
    ropeBase: num('rope.freq_base', 10000),
    nRot: num('rope.dimension_count', headDim),
    nCtxTrain: num('context_length'),
    tiedOutput: !r.hasTensor('output.weight'),
  };
  if (r.get('general.architecture') && r.get(`${arch}.rope.scaling.type`) !== undefined && r.get(`${arch}.rope.scaling.type`) !== 'none') {
    throw fileError(r.path, `uses RoPE scaling '${String(r.get(`${arch}.rope.scaling.type`))}'`, 'The engine supports unscaled RoPE only; evaluate with llama.cpp instead');
  }
  if (embd.ne[0] !== nEmbd) throw fileError(r.path, `token_embd.weight has ${embd.ne[0]} columns but embedding_length is ${nEmbd}`, NEXT);
  if (nHead % base.nHeadKv !== 0) throw fileError(r.path, `head_count ${nHead} is not a multiple of head_count_kv ${base.nHeadKv}`, NEXT);
  if (arch === 'qwen3') return { ...base, arch };

  const sections = r.get<unknown[]>(`${arch}.rope.dimension_sections`);
  if (!Array.isArray(sections) || sections.length !== 4) throw fileError(r.path, `'${arch}.rope.dimension_sections' must be an array of 4 integers`, NEXT);
  const interval = num('full_attention_interval', 4);
  const recArr = r.get<unknown[]>(`${arch}.attention.recurrent_layers`);
  const recurrent = Array.from({ length: base.nLayer }, (_, i) => (Array.isArray(recArr) ? Boolean(recArr[i]) : (i + 1) % interval !== 0));
  const p: Qwen35Params = {
    ...base,
    arch,
    ropeSections: sections.map(Number) as [number, number, number, number],
    convKernel: num('ssm.conv_kernel'),
    ssmInner: num('ssm.inner_size'),
    ssmState: num('ssm.state_size'),
    ssmGroups: num('ssm.group_count'),
    ssmHeads: num('ssm.time_step_rank'),
    recurrent,
  };
  if (p.ssmInner !== p.ssmHeads * p.ssmState) throw fileError(r.path, `ssm.inner_size ${p.ssmInner} is not time_step_rank ${p.ssmHeads} × state_size ${p.ssmState}`, NEXT);
  if (p.ssmHeads % p.ssmGroups !== 0) throw fileError(r.path, `ssm.time_step_rank ${p.ssmHeads} is not a multiple of ssm.group_count ${p.ssmGroups}`, NEXT);
  return p;
}

/** GDN conv channels: q and k (key heads × state) plus v (inner). */
export const convChannels = (p: Qwen35Params) => 2 * p.ssmGroups * p.ssmState + p.ssmInner;
