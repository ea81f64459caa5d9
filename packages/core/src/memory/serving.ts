// Memory llama.cpp allocates to serve a model (src/llama-context.cpp, llama-kv-cache.cpp,
// llama-memory-recurrent.cpp): weights, the KV cache of the attention layers only, the recurrent
// (conv + delta-rule) state of the linear-attention layers, the logits buffer and the compute buffer.
// Formulas and their sources: docs/memory.md.
import { ggmlRowBytes, ggmlTensorBytes, type GgmlTypeName } from '../ggml-types.js';
import type { ModelShape } from './model.js';

export const KV_TYPES = ['f16', 'q8_0', 'q4_0'] as const;
export type KvType = (typeof KV_TYPES)[number];
const KV_GGML: Record<KvType, GgmlTypeName> = { f16: 'F16', q8_0: 'Q8_0', q4_0: 'Q4_0' };

export interface ServingOptions {
  /** Context length per sequence (tokens). */
  ctx: number;
  /** Sequences served at once (llama-server --parallel). */
  parallel: number;
  kvType: KvType;
  /** Logical batch = physical micro-batch (node-llama-cpp's default: min(ctx × parallel, 512)). */
  ubatch?: number;
}

export interface ServingMemory {
  weights: number;
  kvCache: number;
  recurrentState: number;
  output: number;
  compute: number;
  total: number;
  /** The cells the KV cache holds (ctx × parallel, padded). */
  kvCells: number;
  ubatch: number;
}

/** llama.cpp pads the context to a multiple of 256 cells. */
export const CTX_PAD = 256;
const F32 = 4;

export const padCtx = (n: number): number => Math.ceil(n / CTX_PAD) * CTX_PAD;

/** K and V rows for every cell of every attention layer (trunk only: MTP blocks get no cache in the main context). */
export function kvCacheBytes(s: ModelShape, cells: number, kvType: KvType): number {
  const t = KV_GGML[kvType];
  const perCell = ggmlRowBytes(t, s.nHeadKv * s.headDimK) + ggmlRowBytes(t, s.nHeadKv * s.headDimV);
  return s.nAttentionLayers * cells * perCell;
}

/** Per recurrent layer and sequence: the conv window ((K−1) × (inner + 2·groups·state)) and the
 *  state matrix (state × inner), both f32 (n_embd_r, n_embd_s in llama-hparams.cpp). */
export function recurrentStateBytes(s: ModelShape, sequences: number): number {
  if (!s.ssm || s.nRecurrentLayers === 0) return 0;
  const { convKernel, innerSize, groupCount, stateSize } = s.ssm;
  const r = (convKernel - 1) * (innerSize + 2 * groupCount * stateSize);
  const st = stateSize * innerSize;
  return s.nRecurrentLayers * Math.max(1, sequences) * (r + st) * F32;
}

/** The logits llama.cpp reserves at start (one row per sequence, f32); it grows when a request asks for more. */
export function outputBytes(s: ModelShape, sequences: number): number {
  return s.nVocab * Math.max(1, sequences) * F32 + Math.max(1, sequences) * 4;
}

/**
 * The compute buffer of the prompt graph llama.cpp reserves (ubatch tokens, all outputs): the logits
 * [vocab × ubatch] f32 dominate; beside them live a few [width × ubatch] f32 activations (the widest
 * of FFN, the q/gate projection and the DeltaNet conv channels) and, without flash attention, the
 * attention scores [cells × ubatch × heads]. Flash attention is on by default where the backend has it.
 */
export function computeBytes(s: ModelShape, cells: number, ubatch: number, flashAttention = true): number {
  const conv = s.ssm ? s.ssm.innerSize + 2 * s.ssm.groupCount * s.ssm.stateSize : 0;
  const widest = Math.max(s.nFf, 2 * s.nHead * s.headDimK, conv, s.nEmbd);
  const logits = s.nVocab * ubatch * F32;
  const activations = COMPUTE_LIVE_ROWS * widest * ubatch * F32;
  const scores = flashAttention ? 0 : cells * ubatch * s.nHead * F32;
  return logits + activations + scores;
}

/** Activations of the widest width live beside the logits (calibrated on llama.cpp's reserve, docs/memory.md). */
export const COMPUTE_LIVE_ROWS = 1;

export function defaultUbatch(ctx: number, parallel: number): number {
  return Math.min(ctx * parallel, 512);
}

export function servingMemory(s: ModelShape, weightBytes: number, o: ServingOptions): ServingMemory {
  const cells = padCtx(o.ctx) * o.parallel;
  const ubatch = o.ubatch ?? defaultUbatch(o.ctx, o.parallel);
  const kvCache = kvCacheBytes(s, cells, o.kvType);
  const recurrentState = recurrentStateBytes(s, o.parallel);
  const output = outputBytes(s, o.parallel);
  const compute = computeBytes(s, cells, ubatch);
  return {
    weights: weightBytes, kvCache, recurrentState, output, compute,
    total: weightBytes + kvCache + recurrentState + output + compute, kvCells: cells, ubatch,
  };
}

/** Sum of tensor bytes for given types (unpadded, as ggml_nbytes). */
export function tensorBytes(tensors: readonly { ne: readonly number[]; type: GgmlTypeName }[]): number {
  let n = 0;
  for (const t of tensors) n += ggmlTensorBytes(t.type, t.ne);
  return n;
}
