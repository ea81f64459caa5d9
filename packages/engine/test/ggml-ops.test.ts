// The typed ggml layer against plain JS arithmetic, and its shape checks against ggml's asserts.
import { describe, expect, it } from 'vitest';
import { Backend, GgmlContext, GgmlShapeError, GraphRunner, ROPE_TYPE } from '../src/index.js';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 4294967296) * 2 - 1;
}

describe('ggml through koffi', () => {
  const be = Backend.create({ device: 'cpu', threads: 1 });

  it('mul_mat, rms_norm and rope equal JS', () => {
    const r = rng(1);
    const K = 64, M = 8, N = 5;
    const ctx = new GgmlContext(be.lib, 32, 64);
    const w = ctx.newTensor('F32', [K, M]);
    const x = ctx.newTensor('F32', [K, N]);
    const pos = ctx.newTensor('I32', [N]);
    const y = ctx.mulMat(w, x);
    const n = ctx.rmsNorm(x, 1e-6);
    const xr = ctx.reshape(x, [16, 4, N]);
    const ro = ctx.rope(xr, pos, { nDims: 8, mode: ROPE_TYPE.NEOX, freqBase: 10000 });
    const buf = be.allocContext(ctx);
    const runner = new GraphRunner(be);
    const gf = runner.graph(ctx, [y, n, ro]);
    runner.alloc(gf);
    const wv = Float32Array.from({ length: K * M }, r), xv = Float32Array.from({ length: K * N }, r);
    be.setData(w, wv); be.setData(x, xv); be.setData(pos, Int32Array.from([0, 1, 2, 7, 100]));
    runner.compute(gf);
    const yv = be.getF32(y), nv = be.getF32(n), rv = be.getF32(ro);
    let err = 0;
    for (let j = 0; j < N; j++) for (let i = 0; i < M; i++) {
      let s = 0; for (let k = 0; k < K; k++) s += wv[i * K + k]! * xv[j * K + k]!;
      err = Math.max(err, Math.abs(s - yv[j * M + i]!));
    }
    expect(err).toBeLessThan(1e-5);
    let errN = 0;
    for (let j = 0; j < N; j++) {
      let ss = 0; for (let k = 0; k < K; k++) ss += xv[j * K + k]! ** 2;
      const inv = 1 / Math.sqrt(ss / K + 1e-6);
      for (let k = 0; k < K; k++) errN = Math.max(errN, Math.abs(xv[j * K + k]! * inv - nv[j * K + k]!));
    }
    expect(errN).toBeLessThan(1e-5);
    // NeoX RoPE on the first 8 of 16 dims: pairs (d, d+4), theta = p * base^(-2d/8)
    const P = [0, 1, 2, 7, 100];
    let errR = 0;
    for (let t = 0; t < N; t++) for (let h = 0; h < 4; h++) {
      const o = t * 64 + h * 16;
      for (let d = 0; d < 16; d++) {
        let want = xv[o + d]!;
        if (d < 8) {
          const i = d % 4, th = P[t]! * Math.pow(10000, (-2 * i) / 8);
          const a = xv[o + i]!, b = xv[o + i + 4]!;
          want = d < 4 ? a * Math.cos(th) - b * Math.sin(th) : a * Math.sin(th) + b * Math.cos(th);
        }
        errR = Math.max(errR, Math.abs(want - rv[o + d]!));
      }
    }
    expect(errR).toBeLessThan(1e-4);
    runner.free(); buf.free(); ctx.free();
  });

  it('refuses shapes ggml would abort on', () => {
    const ctx = new GgmlContext(be.lib, 16, 0);
    const a = ctx.newTensor('F32', [64, 8]);
    const b = ctx.newTensor('F32', [32, 8]);
    expect(() => ctx.mulMat(a, b)).toThrow(GgmlShapeError);
    expect(() => ctx.add(b, a)).toThrow(/does not broadcast/);
    expect(() => ctx.reshape(a, [63, 8])).toThrow(/elements/);
    expect(() => ctx.view(a, [64, 9], [256], 0)).toThrow(/runs past/);
    expect(() => ctx.newTensor('Q4_K', [100])).toThrow(/block size/);
    ctx.free();
  });
});

describe('device choice', () => {
  it('refuses a second ggml build in the same process, and unknown devices', () => {
    Backend.create({ device: 'cpu', threads: 1 }).free();
    expect(() => Backend.create({ device: 'cuda' })).toThrow(/cpu build is already loaded.*separate process/);
    expect(() => Backend.create({ device: 'tpu' as never })).toThrow(/not a device choice/);
  });
});
