// Reads a Hugging Face checkpoint for the reference forward: config.json plus tensors decoded to f32,
// FP8 (F8_E4M3 + 128x128 weight_scale_inv) dequantised on the fly. Only what a step needs is read.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { bf16BitsToF32, decodeToF32, f16BitsToF32, f32ToBf16Bits, f32ToF16Bits, fileError, SAFETENSORS_DTYPES, SafetensorsCheckpoint } from '@qtk/core';
import type { Rounding } from './ops.js';

export interface ReferenceOptions {
  /**
   * Round every matmul input to this type first, as llama.cpp's CPU backend does for f16/bf16 weights
   * (default: no rounding, exact math on the stored weights).
   */
  roundMatmulInputs?: 'f16' | 'bf16';
  /** Also return the final normed hidden state [T, hidden] (what lm_head and the MTP head read). */
  returnHidden?: boolean;
  /** Return only the final normed hidden state (no logits: the caller applies the head itself). */
  hiddenOnly?: boolean;
  /** Called with the residual stream [T, hidden] after each decoder layer (layer-by-layer comparisons). */
  onLayer?: (layer: number, hidden: Float64Array) => void;
  /**
   * Replaces a weight as read (HF name, decoded values) before the math uses it: a LoRA delta
   * W + scale·B·A, or another base. A Float64Array keeps such a sum exact; the math only indexes it.
   */
  adjustWeight?: (name: string, values: Float32Array) => Float32Array | Float64Array;
}

export interface ReferenceResult {
  /** [T, vocab] row-major. */
  logits: Float32Array;
  vocab: number;
  hidden?: Float64Array;
}

export function rounding(kind: ReferenceOptions['roundMatmulInputs']): Rounding | undefined {
  if (kind === 'bf16') return (x) => bf16BitsToF32(f32ToBf16Bits(x));
  if (kind === 'f16') return (x) => f16BitsToF32(f32ToF16Bits(x));
  return undefined;
}

export class HfWeights {
  /** See ReferenceOptions.adjustWeight. */
  adjust?: ReferenceOptions['adjustWeight'];

  private constructor(
    readonly dir: string,
    readonly config: Record<string, any>,
    private readonly ck: SafetensorsCheckpoint,
  ) {}

  static async open(dir: string): Promise<HfWeights> {
    const cfgPath = path.join(dir, 'config.json');
    const text = await fs.readFile(cfgPath, 'utf8').catch((e: Error) => {
      throw fileError(cfgPath, `cannot be read (${e.message})`, 'Give the folder of a Hugging Face checkpoint (config.json beside the safetensors files)');
    });
    let config: Record<string, any>;
    try {
      config = JSON.parse(text) as Record<string, any>;
    } catch (e) {
      throw fileError(cfgPath, `is not valid JSON (${(e as Error).message})`, 'Restore the file from the original checkpoint', e);
    }
    return new HfWeights(dir, config, await SafetensorsCheckpoint.open(dir));
  }

  has(name: string): boolean {
    return this.ck.has(name);
  }

  shape(name: string): number[] {
    return this.ck.info(name).shape;
  }

  /** A whole tensor as f32, checked against the shape the model math expects. */
  async get(name: string, shape?: number[]): Promise<Float32Array> {
    const info = this.ck.info(name);
    if (shape !== undefined && (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i]))) {
      throw fileError(info.file, `tensor ${name} has shape [${info.shape}], config.json implies [${shape}]`, 'Check that config.json belongs to these weights');
    }
    const read = await this.ck.readF32(name);
    const values = info.dtype === 'F8_E4M3' ? await this.dequantFp8(name, read, info.shape) : read;
    return this.adjust ? (this.adjust(name, values) as Float32Array) : values;
  }

  /** Rows `ids` of a 2-D tensor (embedding lookup) without reading the rest. */
  async rows(name: string, ids: number[]): Promise<Float32Array> {
    const info = this.ck.info(name);
    const [n, width] = info.shape as [number, number];
    if (info.dtype === 'F8_E4M3') {
      const all = await this.get(name);
      const out = new Float32Array(ids.length * width);
      ids.forEach((id, t) => out.set(all.subarray(id * width, (id + 1) * width), t * width));
      return out;
    }
    const rowBytes = width * SAFETENSORS_DTYPES[info.dtype].bytes;
    const out = new Float32Array(ids.length * width);
    for (let t = 0; t < ids.length; t++) {
      if (!(ids[t]! >= 0 && ids[t]! < n)) throw new RangeError(`token id ${ids[t]} at position ${t} is outside the ${n} rows of ${name}`);
      decodeToF32(info.dtype, await this.ck.readRange(name, ids[t]! * rowBytes, rowBytes), out.subarray(t * width, (t + 1) * width));
    }
    return out;
  }

  /** Streams a 2-D tensor in blocks of rows (lm_head), so a large vocabulary is never held whole. */
  async forEachRowBlock(name: string, rowsPerBlock: number, fn: (block: Float32Array, row0: number, rows: number) => void): Promise<void> {
    const info = this.ck.info(name);
    const [n, width] = info.shape as [number, number];
    if (info.dtype === 'F8_E4M3') {
      const all = await this.get(name);
      for (let r = 0; r < n; r += rowsPerBlock) fn(all.subarray(r * width, Math.min(n, r + rowsPerBlock) * width), r, Math.min(rowsPerBlock, n - r));
      return;
    }
    const rowBytes = width * SAFETENSORS_DTYPES[info.dtype].bytes;
    for (let r = 0; r < n; r += rowsPerBlock) {
      const rows = Math.min(rowsPerBlock, n - r);
      fn(decodeToF32(info.dtype, await this.ck.readRange(name, r * rowBytes, rows * rowBytes)), r, rows);
    }
  }

  /** w[r, c] = f8[r, c] · weight_scale_inv[r / B0, c / B1] (Qwen / DeepSeek block FP8). */
  private async dequantFp8(name: string, values: Float32Array, shape: number[]): Promise<Float32Array> {
    const scaleName = name.replace(/\.weight$/, '.weight_scale_inv');
    const file = this.ck.info(name).file;
    if (!this.ck.has(scaleName)) throw fileError(file, `FP8 tensor ${name} has no ${scaleName}`, 'Use a complete FP8 checkpoint (each F8_E4M3 weight needs its block scales)');
    const block = (this.config.quantization_config?.weight_block_size ?? this.config.text_config?.quantization_config?.weight_block_size ?? [128, 128]) as [number, number];
    const [out, inp] = shape.length === 2 ? (shape as [number, number]) : [shape[0]!, shape.slice(1).reduce((a, b) => a * b, 1)];
    const sShape = this.ck.info(scaleName).shape;
    const sb = [Math.ceil(out / block[0]), Math.ceil(inp / block[1])];
    if (sShape.length !== 2 || sShape[0] !== sb[0] || sShape[1] !== sb[1]) {
      throw fileError(file, `${scaleName} has shape [${sShape}], expected [${sb}] for ${name} [${shape}] with ${block[0]}x${block[1]} blocks`, 'Check quantization_config.weight_block_size in config.json');
    }
    const s = await this.ck.readF32(scaleName);
    for (let r = 0; r < out; r++) {
      const srow = Math.floor(r / block[0]) * sb[1]!;
      for (let c = 0; c < inp; c++) values[r * inp + c] = values[r * inp + c]! * s[srow + Math.floor(c / block[1])]!;
    }
    return values;
  }

  async close(): Promise<void> {
    await this.ck.close();
  }
}

/** logits[t, v] = lm_head[v] · h[t], streamed over blocks of vocabulary rows. */
export async function lmHead(w: HfWeights, name: string, h: Float64Array, T: number, H: number, round?: Rounding): Promise<{ logits: Float32Array; vocab: number }> {
  const [V, width] = w.shape(name) as [number, number];
  if (width !== H) throw new RangeError(`${name}: expected ${H} columns, got ${width}`);
  const hs = round ? h.map(round) : h;
  const logits = new Float32Array(T * V);
  await w.forEachRowBlock(name, 8192, (block, r0, rows) => {
    for (let r = 0; r < rows; r++) {
      const wo = r * H;
      for (let t = 0; t < T; t++) {
        let s = 0;
        for (let i = 0; i < H; i++) s += block[wo + i]! * hs[t * H + i]!;
        logits[t * V + r0 + r] = s;
      }
    }
  });
  return { logits, vocab: V };
}
