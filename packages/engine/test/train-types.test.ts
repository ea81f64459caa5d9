// The frozen base in each stored type trains as it is (mul_mat and OUT_PROD on the type, or a per-layer
// f32 copy where the backend has no OUT_PROD for it, as for BF16 on CPU), and equals the f32 path on
// the same dequantized weights up to the activation rounding ggml's CPU matmul does for that type.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { GgmlTypeName } from '@qtk/core';
import { LoraTrainModel, Model, type LoraParam } from '../src/index.js';
import { fixtureGguf, requantizeGguf, tokenIds, type FixtureGguf } from './helpers.js';
import { dequantizedGguf, dot, uniform } from './train-helpers.js';

// Minimum per-target cosine with the f32 path: ggml's CPU mul_mat rounds the activations to the weight
// type's dot partner (F16 → f16; Q8_0 → Q8_0, one scale per 32; k-quants and IQ4_XS → Q8_K, one 8-bit
// scale per 256), and a target whose gradient is small relative to that noise turns the most.
// Measured worst: F16 0.99998, BF16 1 (copied to f32: CPU has no BF16 OUT_PROD), Q8_0 0.998, Q6_K 0.990, Q5_K 0.964, IQ4_XS 0.915.
// The whole gradient (all targets together): cosine ≥ 0.99 for F16, BF16 and Q8_0 (measured ≥ 0.9996), ≥ the
// per-target bound for the Q8_K-rounded types.
const TYPES: [GgmlTypeName, number][] = [['F16', 0.9999], ['BF16', 0.9999], ['Q8_0', 0.995], ['Q5_K', 0.93], ['Q6_K', 0.95], ['IQ4_XS', 0.85]];
const T = 8;
const tokens = Int32Array.from(tokenIds(T, 4));
const lossMask = new Uint8Array(T).fill(1);

describe('LoRA training on quantized and half-precision bases (qwen3_5, hidden 256)', () => {
  let f: FixtureGguf;
  beforeAll(async () => { f = await fixtureGguf({ arch: 'qwen3_5', layers: 4, hidden: 256, seed: 23 }, 'f32'); });
  afterAll(() => f?.cleanup());

  for (const [type, minCos] of TYPES) {
    it(`${type}: the layer weights stay ${type}; loss and every target's gradient follow the f32 path`, async () => {
      const q = f.gguf.replace(/\.gguf$/, `-${type}.gguf`), deq = f.gguf.replace(/\.gguf$/, `-${type}-deq.gguf`);
      await requantizeGguf(f.gguf, q, type, (n) => n.startsWith('blk.'));
      const model = await Model.load(q, { device: 'cpu', threads: 1, repack: false });
      await dequantizedGguf(model, q, deq);
      const ref = await Model.load(deq, { backend: model.backend, repack: false });
      const a = await LoraTrainModel.create(model, { rank: 2, alpha: 4, seed: 3 }, { seqLen: 16 });
      const b = await LoraTrainModel.create(ref, { rank: 2, alpha: 4, seed: 3 }, { seqLen: 16 });
      try {
        expect(model.tensor('blk.0.attn_qkv.weight').type).toBe(type);
        const params: LoraParam[] = a.params().map((p, i) => ({ ...p, b: uniform(p.b.length, 0.05, 40 + i) }));
        a.setParams(params);
        b.setParams(params);
        const x = a.lossAndGradients({ tokens, lossMask }), y = b.lossAndGradients({ tokens, lossMask });
        let worstCos = 1, worst = '', gh = 0, gg = 0, hh = 0;
        x.grads.forEach((g, i) => {
          const h = y.grads[i]!;
          const [xy, xx, yy] = [dot(g.a, h.a) + dot(g.b, h.b), dot(g.a, g.a) + dot(g.b, g.b), dot(h.a, h.a) + dot(h.b, h.b)];
          gh += xy; gg += xx; hh += yy;
          if (xy / Math.sqrt(xx * yy) < worstCos) { worstCos = xy / Math.sqrt(xx * yy); worst = g.module; }
        });
        const allCos = gh / Math.sqrt(gg * hh);
        const rel = Math.abs(x.lossSum - y.lossSum) / y.lossSum;
        console.log(`${type}: loss rel ${rel.toExponential(2)} vs f32 path; gradient cosine ${allCos.toFixed(5)}, worst target ${worst} ${worstCos.toFixed(5)}`);
        // the activation rounding above is the only difference; a wrong permutation or kernel gives cosines near 0
        expect(rel).toBeLessThan(5e-3);
        expect(allCos).toBeGreaterThan(minCos >= 0.995 ? 0.99 : minCos);
        expect(worstCos).toBeGreaterThan(minCos);
      } finally {
        a.free();
        b.free();
        ref.free();
        model.free();
      }
    });
  }
});
