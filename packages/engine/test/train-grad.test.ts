// LoRA training engine against float64 oracles on tiny fixtures:
// - the loss equals the plain-TS reference forward with W + scale·B·A added in HF space;
// - every target's gradient (A and B) equals float64 central finite differences of that reference,
//   along a random direction per target (one pair of reference passes per target keeps this fast).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoraTrainModel, Model, type LoraParam } from '../src/index.js';
import { fixtureGguf, tokenIds, type FixtureGguf } from './helpers.js';
import { dot, RefLoss, uniform } from './train-helpers.js';

const T = 10;
const tokens = Int32Array.from(tokenIds(T, 11));
// the first two targets are prompt (not counted)
const lossMask = Uint8Array.from({ length: T }, (_, i) => (i < 3 ? 0 : 1));

/** Non-zero A and B, so both gradients are non-trivial. */
function randomParams(ps: LoraParam[], seed: number): LoraParam[] {
  return ps.map((p, i) => ({ ...p, a: uniform(p.a.length, 0.2, seed + 2 * i), b: uniform(p.b.length, 0.05, seed + 2 * i + 1) }));
}

for (const arch of ['qwen3', 'qwen3_5'] as const) {
  describe(`${arch} LoRA training, f32 base`, () => {
    let f: FixtureGguf;
    let model: Model;
    let train: LoraTrainModel;
    let ref: RefLoss;
    let params: LoraParam[];
    beforeAll(async () => {
      f = await fixtureGguf({ arch, layers: 4, seed: 21 }, 'f32');
      model = await Model.load(f.gguf, { device: 'cpu', threads: 1, repack: false });
      train = await LoraTrainModel.create(model, { rank: 2, alpha: 4, seed: 3 }, { seqLen: 32 });
      params = randomParams(train.params(), 100);
      train.setParams(params);
      ref = await RefLoss.open(f.hfDir);
    });
    afterAll(() => {
      train?.free();
      model?.free();
      f?.cleanup();
    });

    it('loss equals the float64 reference with W + scale·B·A in HF space', async () => {
      const got = train.evalLoss({ tokens, lossMask });
      const want = await ref.lossSum(tokens, lossMask, { params, scale: train.scale });
      console.log(`${arch}: loss ${got.lossSum} vs reference ${want} (rel ${(Math.abs(got.lossSum - want) / want).toExponential(2)})`);
      expect(got.nTokens).toBe(T - 3);
      // f32 ggml vs float64 over 4 layers and a 151,936-way softmax: measured ≤ 2e-7 relative
      expect(Math.abs(got.lossSum - want) / want).toBeLessThan(2e-6);
    });

    it('every target\'s gradient equals float64 finite differences', async () => {
      const step = train.lossAndGradients({ tokens, lossMask });
      const want0 = await ref.lossSum(tokens, lossMask, { params, scale: train.scale });
      expect(Math.abs(step.lossSum - want0) / want0).toBeLessThan(2e-6);
      // central differences err by O(ε²): with ε = 1e-3 the DeltaNet in_proj_qkv direction showed 1e-3, with 3e-4 8e-5
      const eps = 3e-4;
      let worst = 0;
      const kinds = new Map<string, number>();
      for (const [i, p] of params.entries()) {
        const g = step.grads[i]!;
        expect(g.module).toBe(p.module);
        const dA = uniform(p.a.length, 1, 7000 + i), dB = uniform(p.b.length, 1, 9000 + i);
        const moved = (s: number) => params.map((q, j) => (j !== i ? q : { ...q, a: q.a.map((v, k) => v + s * eps * dA[k]!), b: q.b.map((v, k) => v + s * eps * dB[k]!) }));
        const lp = await ref.lossSum(tokens, lossMask, { params: moved(1), scale: train.scale });
        const lm = await ref.lossSum(tokens, lossMask, { params: moved(-1), scale: train.scale });
        const fd = (lp - lm) / (2 * eps);
        const an = dot(g.a, dA) + dot(g.b, dB);
        const err = Math.abs(an - fd) / Math.max(Math.abs(fd), 1);
        worst = Math.max(worst, err);
        const kind = p.module.split('.').slice(-2).join('.');
        kinds.set(kind, Math.max(kinds.get(kind) ?? 0, err));
        expect(Math.abs(fd)).toBeGreaterThan(1e-3); // the direction moves the loss: the check has power
      }
      console.log(`${arch}: directional FD vs ggml gradient, worst relative error per module:`, Object.fromEntries([...kinds].map(([k, v]) => [k, v.toExponential(2)])));
      // measured ≤ 1e-4 (the ε² term, plus f32 rounding of the gradient through 4 layers and the chunked loss)
      expect(worst).toBeLessThan(5e-4);
    });
  });
}
