// The plain-TS reference forward: hand-checked ops, head grouping, causality, FP8, and the fixtures' logit statistics.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QtkError } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { causalAttention, rmsnorm, ropeInvFreq, ropeRotateHalf, softplus } from '../src/reference/ops.js';
import { causalConv1dSilu, gatedDeltaRule } from '../src/reference/qwen3_5.js';
import { referenceForward } from '../src/index.js';

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
};

/** A seeded N(0,1) stream for synthetic inputs. */
function randn(seed: number): (n: number) => Float64Array {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => Float64Array.from({ length: n }, () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
}

describe('reference ops, checked by hand', () => {
  it('rmsnorm: zero-centred (1 + w) and plain (w)', () => {
    const x = Float64Array.from([1, 2, 3, 4]);
    const zc = rmsnorm(x, 4, Float32Array.from([0, 0.5, -0.5, 1]), 1e-6, true);
    expect(maxAbsDiff(zc, [0.3651483473268884, 1.0954450419806652, 0.5477225209903326, 2.921186778615107])).toBeLessThan(1e-12);
    const plain = rmsnorm(x, 4, Float32Array.from([1, 1.5, 0.5, 2]), 1e-6, false);
    expect(maxAbsDiff(plain, zc)).toBeLessThan(1e-12);
  });

  it('partial rotate_half RoPE turns pairs (d, d + rot/2) of the first rot dims only', () => {
    const x = Float64Array.from([1, 2, 3, 4, 5, 6, 7, 8]);
    const inv = ropeInvFreq(4, 100); // [1, 100^-0.5]
    expect(Array.from(inv)).toEqual([1, 0.1]);
    ropeRotateHalf(x, 0, 4, Float64Array.from([2 * inv[0]!, 2 * inv[1]!])); // position 2
    expect(maxAbsDiff(x, [-3.1440391170241875, 1.1654558325022384, -0.33914308281574557, 4.317604972955089, 5, 6, 7, 8])).toBeLessThan(1e-12);
  });

  it('softplus follows torch (linear above 20)', () => {
    expect(softplus(0)).toBeCloseTo(Math.log(2), 15);
    expect(softplus(25)).toBe(25);
    expect(softplus(-30)).toBeGreaterThan(0);
  });

  it('causal conv1d: tap K-1 is the current token, earlier taps read zeros before the start', () => {
    // x = [1, 2, 3] on one channel, w = [0.5 (previous), 2 (current)] → silu([2, 4.5, 7]).
    const y = causalConv1dSilu(Float64Array.from([1, 2, 3]), 3, 1, Float32Array.from([0.5, 2]), 2);
    expect(maxAbsDiff(y, [1.7615941559557646, 4.450558758162331, 6.993622641639196])).toBeLessThan(1e-12);
  });

  it('gated delta rule over 2 tokens, computed by hand', () => {
    // One head, dk = 2, dv = 1. t0: k=[1,0], v=2, β=0.5 → S=[1,0]ᵀ, o = q·S/√2 with q=[1,0] → 1/√2.
    // t1: decay 0.5 → S=[0.5,0]; k=[0.6,0.8]: Sᵀk = 0.3; δ = 1·(1 − 0.3) = 0.7; S = [0.92, 0.56]; q=[0,1] → 0.56/√2.
    const o = gatedDeltaRule(
      Float64Array.from([1, 0, 0, 1]), Float64Array.from([1, 0, 0.6, 0.8]), Float64Array.from([2, 1]),
      Float64Array.from([Math.log(0.5), Math.log(0.5)]), Float64Array.from([0.5, 1]), 2, 1, 1, 2, 1,
    );
    // (HF's l2norm keeps eps = 1e-6 inside the root, which moves these by ~1e-6.)
    expect(o[0]).toBeCloseTo(1 / (1 + 1e-6) / Math.SQRT2, 9);
    expect(o[1]).toBeCloseTo(0.56 / Math.SQRT2, 5);
  });

  it('gated delta rule L2-normalises q and k itself (scale-free in both)', () => {
    const r = randn(5);
    const [T, hk, hv, dk, dv] = [4, 1, 1, 3, 2];
    const q = r(T * dk), k = r(T * dk), v = r(T * dv), g = r(T).map((x) => -Math.abs(x)), b = r(T).map((x) => 1 / (1 + Math.exp(-x)));
    const o1 = gatedDeltaRule(q, k, v, g, b, T, hk, hv, dk, dv);
    const o2 = gatedDeltaRule(q.map((x) => 7 * x), k.map((x) => 3 * x), v, g, b, T, hk, hv, dk, dv);
    expect(maxAbsDiff(o1, o2)).toBeLessThan(1e-5);
  });
});

describe('head grouping (HF: grouped, not tiled)', () => {
  it('value head n of the gated delta rule reads key head floor(n / (Hv/Hk))', () => {
    const r = randn(11);
    const [T, hk, hv, dk, dv] = [5, 2, 6, 4, 3];
    const q = r(T * hk * dk), k = r(T * hk * dk), v = r(T * hv * dv);
    const g = r(T * hv).map((x) => -0.3 * Math.abs(x)), beta = r(T * hv).map((x) => 1 / (1 + Math.exp(-x)));
    const o = gatedDeltaRule(q, k, v, g, beta, T, hk, hv, dk, dv);
    const head = (a: Float64Array, h: number, n: number, d: number) => Float64Array.from({ length: T * d }, (_, i) => a[(Math.floor(i / d) * n + h) * d + (i % d)]!);
    const single = (n: number, m: number) =>
      gatedDeltaRule(head(q, m, hk, dk), head(k, m, hk, dk), head(v, n, hv, dv), head(g, n, hv, 1), head(beta, n, hv, 1), T, 1, 1, dk, dv);
    let tiledDiffers = false;
    for (let n = 0; n < hv; n++) {
      expect(maxAbsDiff(head(o, n, hv, dv), single(n, Math.floor(n / 3))), `value head ${n}`).toBeLessThan(1e-12);
      if (Math.floor(n / 3) !== n % hk && maxAbsDiff(head(o, n, hv, dv), single(n, n % hk)) > 1e-3) tiledDiffers = true;
    }
    expect(tiledDiffers).toBe(true); // the check can tell the two pairings apart
  });

  it('query head h of attention reads KV head floor(h / (nq/nkv)), causally', () => {
    const r = randn(12);
    const [T, nq, nkv, hd] = [4, 4, 2, 3];
    const q = r(T * nq * hd), k = r(T * nkv * hd), v = r(T * nkv * hd);
    const out = causalAttention(q, k, v, T, nq, nkv, hd);
    for (let h = 0; h < nq; h++) {
      const kv = Math.floor(h / 2);
      for (let t = 0; t < T; t++) {
        const s = Array.from({ length: t + 1 }, (_, j) => {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[(t * nq + h) * hd + d]! * k[(j * nkv + kv) * hd + d]!;
          return dot / Math.sqrt(hd);
        });
        const m = Math.max(...s);
        const e = s.map((x) => Math.exp(x - m));
        const z = e.reduce((a, b) => a + b, 0);
        for (let d = 0; d < hd; d++) {
          const want = e.reduce((a, p, j) => a + (p / z) * v[(j * nkv + kv) * hd + d]!, 0);
          expect(out[(t * nq + h) * hd + d]).toBeCloseTo(want, 12);
        }
      }
    }
  });
});

describe('referenceForward on the fixtures', () => {
  let root: string;
  const ids = [9707, 11, 1879, 0, 576, 374, 264, 1273, 315, 279, 5785, 4637, 13, 151645, 198, 151644, 872, 198, 3838, 374, 220, 17, 10, 17, 30, 151645, 198, 40, 1079, 2704, 13, 1];
  const dir = (k: string) => path.join(root, k);
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-reference-'));
    await generateFixture({ arch: 'qwen3_5', outDir: dir('q35'), seed: 0 });
    await generateFixture({ arch: 'qwen3_5', outDir: dir('q35fp8'), seed: 0, fp8: true });
    await generateFixture({ arch: 'qwen3', outDir: dir('q3'), seed: 0 });
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  for (const arch of ['q35', 'q3']) {
    it(`${arch}: logits of a prefix equal the first rows of the longer sequence's (causality), and context matters`, async () => {
      const full = await referenceForward(dir(arch), ids);
      const pre = await referenceForward(dir(arch), ids.slice(0, 7));
      expect(full.vocab).toBe(151936);
      expect(full.logits.length).toBe(ids.length * full.vocab);
      expect(maxAbsDiff(pre.logits, full.logits.subarray(0, 7 * full.vocab))).toBe(0);
      // Changing token 0 changes the logits at position 6: the layers mix context.
      const other = await referenceForward(dir(arch), [42, ...ids.slice(1, 7)]);
      const V = full.vocab;
      expect(maxAbsDiff(other.logits.subarray(6 * V, 7 * V), pre.logits.subarray(6 * V, 7 * V))).toBeGreaterThan(1e-3);
    });
  }

  it('the fixtures give peaked, non-degenerate next-token distributions (few near-ties)', async () => {
    for (const arch of ['q35', 'q3']) {
      const { logits, vocab: V } = await referenceForward(dir(arch), ids);
      const gaps: number[] = [];
      const ents: number[] = [];
      const tops = new Set<number>();
      for (let t = 0; t < ids.length; t++) {
        const row = logits.subarray(t * V, (t + 1) * V);
        let a = -Infinity, b = -Infinity, top = -1;
        for (let i = 0; i < V; i++) {
          if (row[i]! > a) [b, a, top] = [a, row[i]!, i];
          else if (row[i]! > b) b = row[i]!;
        }
        let z = 0;
        for (let i = 0; i < V; i++) z += Math.exp(row[i]! - a);
        let h = 0;
        for (let i = 0; i < V; i++) {
          const p = Math.exp(row[i]! - a) / z;
          if (p > 0) h -= p * Math.log(p);
        }
        gaps.push(a - b);
        ents.push(h);
        tops.add(top);
      }
      const sorted = [...gaps].sort((x, y) => x - y);
      const meanH = ents.reduce((x, y) => x + y, 0) / ents.length;
      console.log(`${arch}: top1-top2 gap min ${sorted[0]!.toFixed(3)} median ${sorted[sorted.length >> 1]!.toFixed(2)}; gaps < 0.1: ${gaps.filter((g) => g < 0.1).length}/${gaps.length}; entropy mean ${meanH.toFixed(2)} nats (uniform ${Math.log(V).toFixed(1)}); ${tops.size} distinct top-1 tokens`);
      expect(gaps.filter((g) => g < 0.1).length).toBeLessThanOrEqual(ids.length / 8);
      expect(meanH).toBeLessThan(4);
      expect(tops.size).toBeGreaterThan(ids.length / 2); // not one token everywhere
    }
  });

  it('an FP8 checkpoint (dequantised with weight_scale_inv) gives logits close to its bf16 source', async () => {
    // e4m3 keeps 3 mantissa bits (~2.5% RMS weight noise); this random 8-layer model amplifies that to
    // ~10-40% relative error in the final hidden state, so the bound is on correlation and top-1 agreement.
    const T = 12;
    const a = await referenceForward(dir('q35'), ids.slice(0, T));
    const b = await referenceForward(dir('q35fp8'), ids.slice(0, T));
    const V = a.vocab;
    let agree = 0;
    let maxD = 0;
    let minCorr = 1;
    for (let t = 0; t < T; t++) {
      const ra = a.logits.subarray(t * V, (t + 1) * V), rb = b.logits.subarray(t * V, (t + 1) * V);
      let ia = 0, ib = 0, sab = 0, saa = 0, sbb = 0, ma = 0, mb = 0;
      for (let i = 0; i < V; i++) {
        if (ra[i]! > ra[ia]!) ia = i;
        if (rb[i]! > rb[ib]!) ib = i;
        ma += ra[i]! / V;
        mb += rb[i]! / V;
      }
      for (let i = 0; i < V; i++) {
        sab += (ra[i]! - ma) * (rb[i]! - mb);
        saa += (ra[i]! - ma) ** 2;
        sbb += (rb[i]! - mb) ** 2;
      }
      if (ia === ib) agree++;
      minCorr = Math.min(minCorr, sab / Math.sqrt(saa * sbb));
      maxD = Math.max(maxD, maxAbsDiff(ra, rb));
    }
    console.log(`fp8 vs bf16: top-1 agreement ${agree}/${T}, min logit correlation ${minCorr.toFixed(3)}, max |Δlogit| ${maxD.toFixed(2)}`);
    expect(maxD).toBeGreaterThan(0); // the FP8 weights really were used
    expect(minCorr).toBeGreaterThan(0.9);
    expect(agree).toBeGreaterThanOrEqual(T / 2);
  });

  it('emulating bf16 matmul inputs moves logits a little, not a lot', async () => {
    const T = 6;
    const exact = await referenceForward(dir('q35'), ids.slice(0, T));
    const rounded = await referenceForward(dir('q35'), ids.slice(0, T), { roundMatmulInputs: 'bf16' });
    const d = maxAbsDiff(exact.logits, rounded.logits);
    console.log(`bf16 matmul-input rounding: max |Δlogit| ${d.toFixed(3)}`);
    expect(d).toBeGreaterThan(0);
    expect(d).toBeLessThan(2);
  });

  it('refuses an unknown architecture and a config that does not match the tensors', async () => {
    const bad = path.join(root, 'bad');
    await fs.cp(dir('q3'), bad, { recursive: true });
    const cfg = JSON.parse(await fs.readFile(path.join(bad, 'config.json'), 'utf8'));
    await fs.writeFile(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, model_type: 'gpt2' }));
    await expect(referenceForward(bad, [1])).rejects.toThrow(/gpt2.*Supported: qwen3_5, qwen3_5_text, qwen3/);
    await fs.writeFile(path.join(bad, 'config.json'), JSON.stringify({ ...cfg, intermediate_size: cfg.intermediate_size + 8 }));
    const err = await referenceForward(bad, [1]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect(String((err as Error).message)).toMatch(/mlp\.gate_proj\.weight has shape \[128,64\], config\.json implies \[136,64\]/);
  });
});
