// GGUF LoRA adapters applied at run time, as llama.cpp's build_lora_mm does: every adapted weight's
// matmul becomes w·x + Σ s · (alpha / rank) · B(A x), with A and B held in f32 on the model's backend.
import { fileError, QtkError, readGgufLora } from '@qtk/core';
import type { BackendBuffer } from '../ggml/backend.js';
import { GgmlContext } from '../ggml/context.js';
import type { Tensor } from '../ggml/tensor.js';
import type { GraphHooks, Model } from './model.js';

export interface LoraSpec {
  path: string;
  /** Multiplier on the adapter's own alpha / rank (default 1). */
  scale?: number;
}

interface LoadedPair { a: Tensor; b: Tensor; scale: number }

/** Scales beyond this are a typo, not an experiment. */
export const LORA_SCALE_LIMIT = 100;

/** Parses `file.gguf[:scale]` as the --lora flags give it. */
export function parseLoraSpec(spec: string): LoraSpec {
  const m = /^(.+):([^:/]*)$/.exec(spec);
  if (!m || /\.gguf$/i.test(spec)) return { path: spec };
  const scale = Number(m[2]);
  if (m[2]!.trim() === '' || !Number.isFinite(scale) || Math.abs(scale) > LORA_SCALE_LIMIT) {
    throw new QtkError(`--lora ${spec}: scale ${JSON.stringify(m[2])} is not a number in [-${LORA_SCALE_LIMIT}, ${LORA_SCALE_LIMIT}]. Pass FILE.gguf or FILE.gguf:SCALE, e.g. adapter.gguf:0.5.`);
  }
  return { path: m[1]!, scale };
}

export class LoraSet {
  private constructor(
    private readonly ctx: GgmlContext,
    private readonly buf: BackendBuffer,
    private readonly byWeight: Map<string, LoadedPair[]>,
  ) {}

  /** Loads each adapter for `model`: same architecture, every adapted tensor present with the adapter's shape. */
  static async load(model: Model, specs: readonly LoraSpec[]): Promise<LoraSet> {
    const adapters = [];
    for (const spec of specs) {
      const g = await readGgufLora(spec.path);
      if (g.arch !== model.params.arch) {
        throw fileError(spec.path, `is an adapter for architecture ${g.arch}, the model ${model.path} is ${model.params.arch}`, 'Use the adapter made for this model');
      }
      for (const p of g.pairs) {
        const w = model.weights.tensors.get(p.name);
        if (!w) throw fileError(spec.path, `adapts ${p.name}, which ${model.path} does not have`, 'Use the adapter made for this model');
        if (w.ne[0] !== p.nIn || w.ne[1] !== p.nOut) {
          throw fileError(spec.path, `${p.name}.lora_a ne [${p.nIn}, ${p.rank}] / .lora_b ne [${p.rank}, ${p.nOut}] do not fit the model's ${p.name} ne [${w.ne.slice(0, 2)}]`, 'The adapter belongs to another model size: use its own base model');
        }
      }
      adapters.push({ spec, pairs: g.pairs });
    }
    const n = adapters.reduce((acc, a) => acc + 2 * a.pairs.length, 0);
    const ctx = new GgmlContext(model.backend.lib, Math.max(1, n));
    const byWeight = new Map<string, LoadedPair[]>();
    const uploads: [Tensor, Float32Array][] = [];
    adapters.forEach(({ spec, pairs }, i) => {
      for (const p of pairs) {
        const a = ctx.newTensor('F32', [p.nIn, p.rank], `lora${i}.${p.name}.a`.slice(0, 63));
        const b = ctx.newTensor('F32', [p.rank, p.nOut], `lora${i}.${p.name}.b`.slice(0, 63));
        uploads.push([a, p.a], [b, p.b]);
        byWeight.set(p.name, [...(byWeight.get(p.name) ?? []), { a, b, scale: (spec.scale ?? 1) * p.scale }]);
      }
    });
    const buf = model.backend.allocContext(ctx);
    for (const [t, data] of uploads) model.backend.setData(t, data);
    return new LoraSet(ctx, buf, byWeight);
  }

  get size(): number {
    return this.byWeight.size;
  }

  /** The matmul hook: adapted weights get their low-rank terms, all others the plain product. */
  hooks(): GraphHooks {
    return {
      mm: (b, w, x, name) => {
        const pairs = this.byWeight.get(name);
        if (!pairs) return undefined;
        let y = b.g.mulMat(w, x);
        for (const p of pairs) y = b.g.add(y, b.g.scale(b.g.mulMat(p.b, b.g.mulMat(p.a, x)), p.scale));
        return y;
      },
    };
  }

  free(): void {
    this.buf.free();
    this.ctx.free();
  }
}
