// The LoRA module map against real fixture checkpoints and the converter: names and shapes exist on
// both sides, the GGUF-derived map equals the config-derived one, and a delta B·A added in HF space
// then converted equals the converted W plus the map's permuted B·A.
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GgufReader, hparamsFromGguf, loraTargets, permuteLoraA, permuteLoraB, resolveArchitecture, SafetensorsCheckpoint,
  unpermuteLoraA, unpermuteLoraB, type LoraTarget,
} from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';

const RANK = 3;
let root: string;
beforeAll(() => { root = mkdtempSync(path.join(tmpdir(), 'qtk-lora-map-')); });
afterAll(() => rmSync(root, { recursive: true, force: true }));

const f32 = (b: Uint8Array) => new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32 - 0.5));
}
/** [out, r] · [r, in] row-major. */
function matmul(b: Float32Array, a: Float32Array, out: number, inp: number): Float64Array {
  const d = new Float64Array(out * inp);
  for (let o = 0; o < out; o++) for (let r = 0; r < RANK; r++) { const bv = b[o * RANK + r]!; for (let i = 0; i < inp; i++) d[o * inp + i] += bv * a[r * inp + i]!; }
  return d;
}
const stripPerms = (t: LoraTarget) => ({ ...t, rowPerm: t.rowPerm && Array.from(t.rowPerm), colPerm: t.colPerm && Array.from(t.colPerm) });

for (const arch of ['qwen3_5', 'qwen3'] as const) {
  describe(`${arch} LoRA module map`, () => {
    let hfDir: string;
    let gguf: string;
    let targets: LoraTarget[];
    beforeAll(async () => {
      hfDir = path.join(root, arch, 'hf');
      // f32 weights so the delta can be written into the safetensors bytes without rounding.
      await generateFixture({ arch, outDir: hfDir, layers: 4, dtype: 'f32', seed: 3 });
      gguf = path.join(root, arch, 'model.gguf');
      await convertCheckpoint({ input: hfDir, output: gguf, outtype: 'f32', log: () => {} });
      const cfg = JSON.parse(await fs.readFile(path.join(hfDir, 'config.json'), 'utf8'));
      const { arch: a, hparams, hfArchitecture } = resolveArchitecture(cfg, 'config.json');
      targets = loraTargets(a, hparams, { hfArchitecture });
    });

    it('lists every linear of the trunk, each present in the checkpoint and the GGUF with matching shapes', async () => {
      const ck = await SafetensorsCheckpoint.open(hfDir);
      const r = await GgufReader.open(gguf);
      try {
        const perLayer = arch === 'qwen3_5' ? [5, 5, 5, 4].map((n) => n + 3) : [7, 7, 7, 7];
        expect(targets.length).toBe(perLayer.reduce((a, b) => a + b, 0));
        for (const t of targets) {
          expect(ck.info(`${t.module}.weight`).shape).toEqual([t.outFeatures, t.inFeatures]);
          expect(r.tensor(t.tensor).ne).toEqual([t.inFeatures, t.outFeatures]);
        }
        const names = targets.filter((t) => t.layer === 0).map((t) => t.module);
        if (arch === 'qwen3_5') {
          expect(names).toContain('model.language_model.layers.0.linear_attn.in_proj_qkv');
          expect(targets.some((t) => t.module === 'model.language_model.layers.3.self_attn.q_proj' && t.tensor === 'blk.3.attn_q.weight')).toBe(true);
          // MTP block 4 exists in the GGUF but is never a target.
          expect(targets.every((t) => t.layer < 4)).toBe(true);
        } else {
          expect(names).toContain('model.layers.0.self_attn.q_proj');
        }
      } finally {
        await r.close();
        await ck.close();
      }
    });

    it('gives the same map from GGUF metadata as from config.json', async () => {
      const r = await GgufReader.open(gguf);
      try {
        const fromGguf = loraTargets(String(r.get('general.architecture')), hparamsFromGguf((k) => r.get(k), gguf));
        expect(fromGguf.map(stripPerms)).toEqual(targets.map(stripPerms));
      } finally {
        await r.close();
      }
    });

    it('converting W + B·A equals the converted W plus the permuted B·A', async () => {
      // Rewrite every target's weight in a copy of the checkpoint as W + B·A, convert it, compare.
      const dir2 = path.join(root, arch, 'hf-delta');
      await fs.cp(hfDir, dir2, { recursive: true });
      const ck = await SafetensorsCheckpoint.open(dir2);
      const deltas = new Map<string, { b: Float32Array; a: Float32Array }>();
      try {
        for (const [i, t] of targets.entries()) {
          const info = ck.info(`${t.module}.weight`);
          const w = f32(await ck.read(info.name));
          const b = seeded(t.outFeatures * RANK, 11 + i), a = seeded(RANK * t.inFeatures, 101 + i);
          deltas.set(t.tensor, { b, a });
          const d = matmul(b, a, t.outFeatures, t.inFeatures);
          for (let k = 0; k < w.length; k++) w[k] = w[k]! + d[k]!;
          const fh = await fs.open(info.file, 'r+');
          await fh.write(new Uint8Array(w.buffer), 0, w.byteLength, info.dataStart);
          await fh.close();
        }
      } finally {
        await ck.close();
      }
      const gguf2 = path.join(root, arch, 'delta.gguf');
      await convertCheckpoint({ input: dir2, output: gguf2, outtype: 'f32', log: () => {} });
      const r1 = await GgufReader.open(gguf), r2 = await GgufReader.open(gguf2);
      let worst = 0, permuted = 0;
      try {
        for (const t of targets) {
          const { b, a } = deltas.get(t.tensor)!;
          if (t.rowPerm || t.colPerm) permuted++;
          const d = matmul(permuteLoraB(b, RANK, t.rowPerm), permuteLoraA(a, t.inFeatures, t.colPerm), t.outFeatures, t.inFeatures);
          const w1 = f32(await r1.readTensor(t.tensor)), w2 = f32(await r2.readTensor(t.tensor));
          for (let k = 0; k < w1.length; k++) worst = Math.max(worst, Math.abs(w1[k]! + d[k]! - w2[k]!));
        }
      } finally {
        await r1.close();
        await r2.close();
      }
      // One f32 rounding of W + B·A on each side (|W + BA| < 4): ≤ 2 ulp of 4 ≈ 1e-6.
      expect(worst).toBeLessThan(2e-6);
      // The fixture's 6 value heads over 2 key heads make the V-head reorder real on all five DeltaNet projections of the three DeltaNet layers.
      expect(permuted).toBe(arch === 'qwen3_5' ? 3 * 5 : 0);
    });
  });
}

describe('LoRA permutation helpers', () => {
  it('unpermute inverts permute for A columns and B rows', () => {
    const perm = Int32Array.from([2, 0, 3, 1]);
    const a = seeded(2 * 4, 5), b = seeded(4 * 2, 6);
    expect(Array.from(unpermuteLoraA(permuteLoraA(a, 4, perm), 4, perm))).toEqual(Array.from(a));
    expect(Array.from(unpermuteLoraB(permuteLoraB(b, 2, perm), 2, perm))).toEqual(Array.from(b));
    expect(Array.from(permuteLoraB(b, 2, perm)).slice(0, 2)).toEqual(Array.from(b).slice(4, 6));
  });
});
