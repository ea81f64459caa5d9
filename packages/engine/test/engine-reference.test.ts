// Engine logits on converted f32 GGUFs against the plain-TS float64 reference forward on the HF
// files, and chunked evaluation (state and KV cache carried) against one-shot evaluation.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model, referenceForward } from '../src/index.js';
import { fixtureGguf, maxAbsDiff, tokenIds, type FixtureGguf } from './helpers.js';

// f32 GGUF of a bf16 checkpoint holds the exact weights, so the only difference is f32 vs float64
// arithmetic: measured max |Δ logit| ≈ 1e-5..1e-4 on logits of std ~6 (8 layers, hidden 64).
// 2e-3 leaves >10x room; a misplaced head, a wrong RoPE section or eps shows up as > 1e-1.
const LOGIT_TOL = 2e-3;

for (const arch of ['qwen3', 'qwen3_5'] as const) {
  describe(`${arch} engine`, () => {
    let f: FixtureGguf;
    let model: Model;
    const toks = tokenIds(20, 3);
    beforeAll(async () => {
      f = await fixtureGguf({ arch }, 'f32');
      model = await Model.load(f.gguf, { device: 'cpu', threads: 1 });
    });
    afterAll(() => {
      model?.free();
      f?.cleanup();
    });

    it('equals the float64 reference forward on the HF checkpoint', async () => {
      const ref = await referenceForward(f.hfDir, toks);
      const s = model.session({ nCtx: 64 });
      const { logits } = s.eval(toks);
      s.free();
      expect(ref.vocab).toBe(model.params.nVocab);
      const d = maxAbsDiff(logits, ref.logits);
      let scale = 0;
      for (const x of ref.logits) scale = Math.max(scale, Math.abs(x));
      console.log(`${arch}: max |Δ logit| engine vs reference ${d.toExponential(2)} (max |logit| ${scale.toFixed(1)})`);
      expect(d).toBeLessThan(LOGIT_TOL);
    });

    it('chunked evaluation equals one-shot evaluation', () => {
      const one = model.session({ nCtx: 64 });
      const full = one.eval(toks).logits;
      one.free();
      // chunks of 3 inside one call, then two calls (7 + 13) each chunked by 4
      const a = model.session({ nCtx: 64, nBatch: 3 });
      const chunked = a.eval(toks).logits;
      a.free();
      const b = model.session({ nCtx: 64, nBatch: 4 });
      const first = b.eval(toks.slice(0, 7)).logits;
      const second = b.eval(toks.slice(7)).logits;
      expect(b.nPast).toBe(20);
      b.free();
      const joined = new Float32Array(full.length);
      joined.set(first);
      joined.set(second, first.length);
      const d1 = maxAbsDiff(full, chunked), d2 = maxAbsDiff(full, joined);
      console.log(`${arch}: chunked vs one-shot max |Δ logit| ${d1.toExponential(2)}, split calls ${d2.toExponential(2)}`);
      // only the summation order of batched matmuls differs
      expect(d1).toBeLessThan(1e-3);
      expect(d2).toBeLessThan(1e-3);
    });

    it('returns requested positions only, and reset starts a new text', () => {
      const s = model.session({ nCtx: 64, nBatch: 8 });
      const all = s.eval(toks).logits;
      s.reset();
      const some = s.eval(toks, { logits: [19, 2, 9] });
      s.free();
      const V = model.params.nVocab;
      expect(some.logits.length).toBe(3 * V);
      [19, 2, 9].forEach((q, i) => expect(maxAbsDiff(some.logits.subarray(i * V, (i + 1) * V), all.subarray(q * V, (q + 1) * V))).toBeLessThan(1e-3));
    });

    it('refuses what would overflow the context or the vocabulary', () => {
      const s = model.session({ nCtx: 8 });
      expect(() => s.eval(tokenIds(9))).toThrow(/do not fit the context of 8/);
      expect(() => s.eval([model.params.nVocab])).toThrow(/outside the vocabulary/);
      s.free();
    });
  });
}
