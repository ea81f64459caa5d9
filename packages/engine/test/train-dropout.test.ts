// LoRA dropout, PEFT's semantics: the LoRA branch reads dropout(x) (zeroed with probability p, the rest
// scaled by 1/(1−p)) before A, in training steps only; the frozen path and evaluation never see it.
// The float64 oracle: a row whose only counted position is token 0 depends on token 0's forward alone
// (causal), where a dropout mask is a per-column factor, so dropout(x)·Aᵀ = x·(A·diag(m))ᵀ is a weight
// the reference forward can take.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dropoutMask, dropoutSeed, LoraTrainModel, Model, type LoraParam } from '../src/index.js';
import { fixtureGguf, tokenIds, type FixtureGguf } from './helpers.js';
import { dot, RefLoss, uniform } from './train-helpers.js';

const P = 0.5;
const T = 5;
const tokens = Int32Array.from(tokenIds(T, 13));
const lossMask = Uint8Array.from([0, 1, 0, 0, 0]); // only token 0's prediction counts
const seqLen = 16;

describe('qwen3_5 LoRA dropout', () => {
  let f: FixtureGguf;
  let model: Model;
  let train: LoraTrainModel; // dropout P
  let plain: LoraTrainModel; // same A init and parameters, no dropout
  let ref: RefLoss;
  let params: LoraParam[];
  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3_5', layers: 4, seed: 31 }, 'f32');
    model = await Model.load(f.gguf, { device: 'cpu', threads: 1, repack: false });
    train = await LoraTrainModel.create(model, { rank: 2, alpha: 4, seed: 3, dropout: P }, { seqLen });
    plain = await LoraTrainModel.create(model, { rank: 2, alpha: 4, seed: 3 }, { seqLen });
    params = train.params().map((p, i) => ({ ...p, a: uniform(p.a.length, 0.2, 500 + 2 * i), b: uniform(p.b.length, 0.05, 501 + 2 * i) }));
    ref = await RefLoss.open(f.hfDir);
  });
  afterAll(() => {
    train?.free();
    plain?.free();
    model?.free();
    f?.cleanup();
  });

  /** Token 0's mask of each target in HF column order (what the step with this seed draws). */
  function hfMasks(stepSeed: number): Float32Array[] {
    return train.targets.map((t, i) => {
      const m = dropoutMask(P, dropoutSeed(stepSeed, t.layer, i), t.inFeatures * T).subarray(0, t.inFeatures);
      const h = new Float32Array(t.inFeatures);
      for (let j = 0; j < t.inFeatures; j++) h[t.colPerm ? t.colPerm[j]! : j] = m[j]!;
      return h;
    });
  }

  /** Parameters with each A's columns scaled by the mask: the weight the dropped-out branch applies. */
  const masked = (ps: readonly LoraParam[], masks: readonly Float32Array[]) =>
    ps.map((p, i) => ({ ...p, a: p.a.map((v, k) => v * masks[i]![k % p.shapeA[1]]!) }));

  it('a step is reproducible from its dropout seed, and another seed draws another mask', () => {
    train.setParams(params);
    const s1 = train.lossAndGradients({ tokens, lossMask }, { dropoutSeed: 11 });
    const s2 = train.lossAndGradients({ tokens, lossMask }, { dropoutSeed: 11 });
    const s3 = train.lossAndGradients({ tokens, lossMask }, { dropoutSeed: 12 });
    expect(s2.lossSum).toBe(s1.lossSum);
    s1.grads.forEach((g, i) => {
      expect(s2.grads[i]!.a).toEqual(g.a);
      expect(s2.grads[i]!.b).toEqual(g.b);
    });
    expect(s3.lossSum).not.toBe(s1.lossSum);
  });

  it('evaluation applies no dropout: its loss equals the loss without dropout', () => {
    train.setParams(params);
    plain.setParams(params);
    const batch = { tokens: Int32Array.from(tokenIds(12, 5)), lossMask: new Uint8Array(12).fill(1) };
    expect(train.evalLoss(batch).lossSum).toBe(plain.evalLoss(batch).lossSum);
  });

  it('dropout touches only the LoRA branch: with B = 0 a training step has the base loss', () => {
    const zeroB = params.map((p) => ({ ...p, b: new Float32Array(p.b.length) }));
    train.setParams(zeroB);
    plain.setParams(zeroB);
    const batch = { tokens: Int32Array.from(tokenIds(12, 5)), lossMask: new Uint8Array(12).fill(1) };
    expect(train.lossAndGradients(batch, { dropoutSeed: 11 }).lossSum).toBe(plain.evalLoss(batch).lossSum);
  });

  it('with its mask fixed, the loss and every target\'s gradient equal the float64 reference with A·diag(mask)', async () => {
    train.setParams(params);
    const seed = 11;
    const masks = hfMasks(seed);
    // PEFT's mask: dropped with probability P, the kept inputs scaled by 1/(1−P)
    const all = masks.flatMap((m) => [...m]);
    expect(all.every((v) => v === 0 || v === 1 / (1 - P))).toBe(true);
    expect(Math.abs(all.filter((v) => v === 0).length / all.length - P)).toBeLessThan(0.05);
    const step = train.lossAndGradients({ tokens, lossMask }, { dropoutSeed: seed });
    const want0 = await ref.lossSum(tokens, lossMask, { params: masked(params, masks), scale: train.scale });
    const lossRel = Math.abs(step.lossSum - want0) / want0;
    // the loss without dropout differs: the check has power over the mask
    const none = await ref.lossSum(tokens, lossMask, { params, scale: train.scale });
    expect(Math.abs(none - want0)).toBeGreaterThan(1e-3);
    const eps = 3e-4;
    let worst = 0;
    let droppedNonZero = 0;
    for (const [i, p] of params.entries()) {
      const g = step.grads[i]!;
      // A's columns that the mask dropped get no gradient
      for (let k = 0; k < g.a.length; k++) if (masks[i]![k % p.shapeA[1]] === 0 && g.a[k] !== 0) droppedNonZero++;
      const dA = uniform(p.a.length, 1, 7100 + i), dB = uniform(p.b.length, 1, 9100 + i);
      const moved = (s: number) => masked(params.map((q, j) => (j !== i ? q : { ...q, a: q.a.map((v, k) => v + s * eps * dA[k]!), b: q.b.map((v, k) => v + s * eps * dB[k]!) })), masks);
      const fd = ((await ref.lossSum(tokens, lossMask, { params: moved(1), scale: train.scale })) - (await ref.lossSum(tokens, lossMask, { params: moved(-1), scale: train.scale }))) / (2 * eps);
      const an = dot(g.a, dA) + dot(g.b, dB);
      worst = Math.max(worst, Math.abs(an - fd) / Math.max(Math.abs(fd), 1));
      // the direction moves the loss, except through two modules that token 0 alone cannot feel: k_proj
      // (a lone query's softmax is 1 whatever its key) and in_proj_a (the decay of a still-zero state);
      // they share the dropout code of every other target, and their gradient must be 0 like the oracle's
      if (/\.(k_proj|in_proj_a)$/.test(p.module)) {
        expect(fd).toBe(0);
        expect(Math.abs(an)).toBeLessThan(1e-6);
      } else expect(Math.abs(fd)).toBeGreaterThan(1e-3);
    }
    console.log(`dropout ${P}: loss vs float64 with the mask rel ${lossRel.toExponential(2)}; worst directional gradient error ${worst.toExponential(2)}`);
    expect(droppedNonZero).toBe(0);
    // as the dropout-free check in train-grad.test.ts: f32 through 4 layers plus the ε² term of central differences
    expect(lossRel).toBeLessThan(2e-6);
    expect(worst).toBeLessThan(5e-4);
  });
});
