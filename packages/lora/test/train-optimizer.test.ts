// AdamW against a step computed by hand (float64, from the update rule as written in Loshchilov &
// Hutter / torch.optim.AdamW), global-norm clipping, and the learning-rate schedules.
import { describe, expect, it } from 'vitest';
import { AdamW, clipGlobalNorm, globalNorm } from '../src/train/optimizer.js';
import { learningRate, warmupSteps } from '../src/train/schedule.js';

describe('AdamW', () => {
  it('matches two hand-computed steps with weight decay and bias correction', () => {
    const p = Float32Array.from([1, -2]);
    const opt = new AdamW([p], { beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01 });
    // step 1: m̂ = g, v̂ = g², so the move is lr·g/(|g|+eps) after decay by (1 − lr·wd); a zero gradient only decays
    opt.update([Float32Array.from([0.5, 0])], 0.1);
    expect(p[0]).toBeCloseTo(0.899000002, 7);
    expect(p[1]).toBeCloseTo(-1.998, 6);
    // step 2: m = 0.9·m + 0.1·g, v = 0.999·v + 0.001·g², bias corrections 1 − 0.9², 1 − 0.999²
    opt.update([Float32Array.from([-0.25, 3])], 0.1);
    expect(p[0]).toBeCloseTo(0.8714672987058463, 6);
    expect(p[1]).toBeCloseTo(-2.0704156820059967, 6);
    expect(opt.m[0]![1]).toBeCloseTo(0.3, 7);
    expect(opt.v[0]![1]).toBeCloseTo(0.009, 8);
    expect(opt.step).toBe(2);
  });

  it('first step from B = 0 moves each weight by −lr·sign(g)', () => {
    const b = new Float32Array(4);
    new AdamW([b]).update([Float32Array.from([0.3, -2, 1e-3, -7])], 1e-3);
    expect(Array.from(b).map((x) => Math.round(x * 1e6) / 1e6)).toEqual([-1e-3, 1e-3, -1e-3, 1e-3]);
  });
});

describe('gradient clipping', () => {
  it('scales to the max norm when above it', () => {
    const g = [Float32Array.from([3, 0]), Float32Array.from([0, 4])];
    expect(clipGlobalNorm(g, 1)).toBeCloseTo(5, 6);
    expect(globalNorm(g)).toBeCloseTo(1, 5);
    expect(g[0]![0]! / g[1]![1]!).toBeCloseTo(0.75, 6);
  });

  it('leaves gradients below the max norm unchanged', () => {
    const g = [Float32Array.from([0.3, 0.4])];
    clipGlobalNorm(g, 1);
    expect(Array.from(g[0]!)).toEqual([Math.fround(0.3), Math.fround(0.4)]);
  });
});

describe('schedules', () => {
  const base = { peak: 2e-4, warmupSteps: 10, totalSteps: 110 };
  it('warms up linearly from 0', () => {
    expect([0, 5, 10].map((s) => learningRate({ ...base, kind: 'cosine' }, s))).toEqual([0, 1e-4, 2e-4]);
  });
  it('cosine reaches half the peak halfway through the decay and 0 at the end', () => {
    expect(learningRate({ ...base, kind: 'cosine' }, 60)).toBeCloseTo(1e-4, 12);
    expect(learningRate({ ...base, kind: 'cosine' }, 85)).toBeCloseTo(2e-4 * 0.5 * (1 + Math.cos(Math.PI * 0.75)), 12);
    expect(learningRate({ ...base, kind: 'cosine' }, 110)).toBeCloseTo(0, 12);
  });
  it('linear decays in a straight line to 0', () => {
    expect(learningRate({ ...base, kind: 'linear' }, 35)).toBeCloseTo(1.5e-4, 12);
    expect(learningRate({ ...base, kind: 'linear' }, 110)).toBe(0);
  });
  it('constant stays at the peak after warmup', () => {
    expect(learningRate({ ...base, kind: 'constant' }, 109)).toBe(2e-4);
  });
  it('warmup fraction rounds up to whole steps', () => {
    expect(warmupSteps(0.03, 100)).toBe(3);
    expect(warmupSteps(0.03, 10)).toBe(1);
    expect(warmupSteps(0, 10)).toBe(0);
  });
});
