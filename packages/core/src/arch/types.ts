// What one architecture file declares: config → GGUF keys, HF → GGUF tensor names, value transforms.
// The converter (packages/convert) loops over these tables; nothing here reads tensor bytes.
import type { HParams } from './hparams.js';

/** GGUF value types the architecture keys use (the llama.cpp loader checks scalars strictly). */
export type KeyType = 'UINT32' | 'INT32' | 'FLOAT32' | 'BOOL' | 'STRING' | 'ARRAY_INT32';

export type KeyValue = number | boolean | string | readonly number[];

export interface KeyContext {
  /** MTP blocks appended after the trunk (0 for archs without MTP or with --no-mtp). */
  readonly nMtp: number;
}

export interface KeySpec {
  /** Key without the `<arch>.` prefix, e.g. 'attention.head_count'. */
  readonly key: string;
  readonly type: KeyType;
  /** The value, or undefined to write nothing (an optional key absent from the config). */
  readonly value: (h: HParams, ctx: KeyContext) => KeyValue | undefined;
}

/** Element-wise transforms, computed in f32 as the reference converter does. */
export type ValueOp =
  /** HF RMSNorm multiplies by (1 + w); llama.cpp by w. */
  | 'add_one'
  /** A_log → A = −exp(A_log): llama.cpp multiplies the softplus by A directly. */
  | 'neg_exp';

/**
 * A permutation of one axis of the (squeezed) HF tensor: output index i holds input index perm[i].
 * 'rows' is HF dim 0 (ggml's slowest axis), 'cols' the last HF dim (a permutation inside each row).
 */
export interface AxisPermutation {
  readonly axis: 'rows' | 'cols';
  /** The permutation for this checkpoint; null when it is the identity (e.g. H_v == H_k). */
  readonly perm: (h: HParams) => Int32Array | null;
}

export interface TensorTransform {
  readonly value?: ValueOp;
  /** Drop size-1 axes ([C, 1, K] → [C, K]). */
  readonly squeeze?: boolean;
  readonly permute?: AxisPermutation;
  /** Stored F32 whatever the outtype (llama.cpp's converter list: ssm_conv1d, …). */
  readonly keepF32?: boolean;
}

/** Which blocks carry a tensor. 'attention' = every layer of a plain decoder. */
export type LayerKind = 'attention' | 'linear' | 'full' | 'mtp';

export interface TensorRule {
  /** Global rules: the full HF name. Block rules: the suffix after `model.layers.<i>.`. */
  readonly hf: string;
  /** Global rules: the full GGUF name. Block rules: the suffix after `blk.<i>.`. */
  readonly gguf: string;
  /** Expected HF (PyTorch) shape, checked before anything is written. */
  readonly shape: (h: HParams) => readonly number[];
  readonly transform?: TensorTransform;
  /** Block rules only: the layer kinds that carry it. */
  readonly layers?: readonly LayerKind[];
  /** May be absent (e.g. lm_head of a tied model, a bias a config turns off). */
  readonly optional?: (h: HParams) => boolean;
}

export interface RenameOptions {
  /** Drop the MTP block instead of appending it after the trunk. */
  readonly noMtp: boolean;
}

export type RenameResult =
  | { readonly name: string }
  /** Not part of the text GGUF: vision tower (counted and reported), MTP under --no-mtp, buffers llama.cpp ignores. */
  | { readonly skip: 'vision' | 'mtp' | 'unused' };

export interface ArchDefinition {
  /** HF `model_type` this file handles (the file is named after it). */
  readonly modelType: string;
  /** HF `architectures[0]` values it converts. */
  readonly hfArchitectures: readonly string[];
  /** llama.cpp architecture: `general.architecture` and the prefix of the keys below. */
  readonly ggufArch: string;
  /** Keys in emission order, without the `<arch>.` prefix. */
  readonly keys: readonly KeySpec[];
  readonly globalTensors: readonly TensorRule[];
  readonly blockTensors: readonly TensorRule[];
  /** Kind of each trunk layer (length num_hidden_layers). MTP blocks follow with kind 'mtp'. */
  layerKinds(h: HParams): LayerKind[];
  /** Safetensors name → the canonical HF name the tables use, or why it is left out. */
  rename(name: string, h: HParams, opts: RenameOptions): RenameResult;
  /** Tensors computed from the config rather than read (llama3's rope_freqs), written F32 after the rest. */
  extraTensors?(h: HParams): GeneratedTensor[];
}

export interface GeneratedTensor {
  readonly gguf: string;
  readonly values: Float32Array;
}

/** One GGUF key/value as the converter writes it (scalars typed exactly as the loader reads them). */
export type MetadataEntry =
  | { readonly key: string; readonly type: 'UINT32' | 'INT32' | 'FLOAT32'; readonly value: number }
  | { readonly key: string; readonly type: 'BOOL'; readonly value: boolean }
  | { readonly key: string; readonly type: 'STRING'; readonly value: string }
  | { readonly key: string; readonly type: 'ARRAY'; readonly elemType: 'STRING'; readonly value: readonly string[] }
  | { readonly key: string; readonly type: 'ARRAY'; readonly elemType: 'INT32'; readonly value: readonly number[] };
