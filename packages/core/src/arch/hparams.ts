// config.json as the architecture tables read it: one merged dict (text_config folded in, as the
// llama.cpp converter does) with typed getters whose errors name config.json, the key and the value.
import { fileError } from '../errors.js';

export type JsonObject = Record<string, unknown>;

export class HParams {
  /** The merged config: root keys, overridden by `text_config` keys (text wins on clashes). */
  readonly raw: Readonly<JsonObject>;
  /** Path of config.json, for error messages. */
  readonly file: string;

  constructor(config: JsonObject, file: string) {
    const text = config.text_config;
    this.raw = isObject(text) ? { ...config, ...text } : { ...config };
    this.file = file;
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  get(key: string): unknown {
    return this.raw[key];
  }

  /** A non-negative integer; `fallback` when absent, an error when absent without one. */
  int(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw fileError(this.file, `missing "${key}"`, 'This checkpoint\'s config.json is incomplete: re-download it from the model repository');
    }
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw fileError(this.file, `"${key}" is ${JSON.stringify(v)}, expected a non-negative integer`, 'Fix config.json or re-download it');
    }
    return v;
  }

  /** A finite number. */
  num(key: string, fallback?: number): number {
    const v = this.raw[key];
    if (v === undefined || v === null) {
      if (fallback !== undefined) return fallback;
      throw fileError(this.file, `missing "${key}"`, 'This checkpoint\'s config.json is incomplete: re-download it from the model repository');
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      throw fileError(this.file, `"${key}" is ${JSON.stringify(v)}, expected a number`, 'Fix config.json or re-download it');
    }
    return v;
  }

  /** `head_dim`, or hidden_size / num_attention_heads when a config leaves it out. */
  headDim(): number {
    return this.has('head_dim') ? this.int('head_dim') : this.int('hidden_size') / this.int('num_attention_heads');
  }

  /**
   * The RoPE dict: `rope_parameters` (new transformers) or `rope_scaling` (older), with top-level
   * rope_theta / partial_rotary_factor / rope_type mirrored in when the dict lacks them.
   */
  rope(): JsonObject {
    const src = this.raw.rope_parameters ?? this.raw.rope_scaling;
    const r: JsonObject = isObject(src) ? { ...src } : {};
    if (r.rope_theta === undefined && this.has('rope_theta')) r.rope_theta = this.raw.rope_theta;
    if (r.rope_type === undefined && r.type !== undefined) r.rope_type = r.type;
    if (r.partial_rotary_factor === undefined && this.has('partial_rotary_factor')) r.partial_rotary_factor = this.raw.partial_rotary_factor;
    if (r.original_max_position_embeddings === undefined && this.has('original_max_position_embeddings')) {
      r.original_max_position_embeddings = this.raw.original_max_position_embeddings;
    }
    return r;
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
