// `qtk export gptq`: the checkpoint is read back by a decoder written here from the GPTQ format's
// description (AutoGPTQ/transformers/vLLM layout, checkpoint_format "gptq"), independent of qtk's packing:
//   qweight int32 [in/pf, out]: input row i·pf + j of output o in bits [b·j, b·j + b) of qweight[i][o]
//   qzeros  int32 [groups, out/pf]: zero − 1 of output o·pf + j in bits [b·j, …) of qzeros[g][o]
//   scales  f16 [groups, out], g_idx int32 [in]; w[o][i] = scales[g][o] · (q[i][o] − zero[g][o]), g = g_idx[i].
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '@qtk/convert';
import { SafetensorsCheckpoint } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { exportGptq } from '../src/index.js';

const BITS = 4;
const GROUP = 32;

/** IEEE half → number, from the bit layout (1 sign, 5 exponent, 10 mantissa). */
function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

async function raw(ck: SafetensorsCheckpoint, name: string): Promise<DataView> {
  const b = await ck.read(name);
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

/** The decoder: [out, in] row-major f32 weights of module `m`. */
async function decode(ck: SafetensorsCheckpoint, m: string, bits: number): Promise<Float32Array> {
  const [rowsPacked, out] = ck.info(`${m}.qweight`).shape as [number, number];
  const pf = 32 / bits, mask = (1 << bits) - 1, inp = rowsPacked * pf;
  const [qw, qz, sc, gi] = await Promise.all(['qweight', 'qzeros', 'scales', 'g_idx'].map((p) => raw(ck, `${m}.${p}`)));
  const zcols = ck.info(`${m}.qzeros`).shape[1]!;
  const w = new Float32Array(out * inp);
  for (let i = 0; i < inp; i++) {
    const g = gi!.getInt32(4 * i, true);
    for (let o = 0; o < out; o++) {
      const q = (qw!.getUint32(4 * (Math.floor(i / pf) * out + o), true) >>> (bits * (i % pf))) & mask;
      const z = ((qz!.getUint32(4 * (g * zcols + Math.floor(o / pf)), true) >>> (bits * (o % pf))) & mask) + 1;
      w[o * inp + i] = half(sc!.getUint16(2 * (g * out + o), true)) * (q - z);
    }
  }
  return w;
}

interface Run { dir: string; intended: Map<string, Float32Array> }

describe('qwen3_5: export gptq', () => {
  let root: string, hf: string, gguf: string, calib: string;
  const runs: Record<'plain' | 'descAct', Run> = {} as never;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'qtk-gptq-export-'));
    hf = path.join(root, 'hf');
    await generateFixture({ arch: 'qwen3_5', layers: 4, seed: 3, outDir: hf });
    gguf = path.join(root, 'f16.gguf');
    await convertCheckpoint({ input: hf, output: gguf, outtype: 'f16', log: () => {} });
    calib = path.join(root, 'calib.txt');
    const src = path.join(import.meta.dirname, '../src/export');
    await fs.writeFile(calib, (await Promise.all((await fs.readdir(src)).map((f) => fs.readFile(path.join(src, f), 'utf8')))).join('\n'));
    for (const [key, descAct] of [['plain', false], ['descAct', true]] as const) {
      const intended = new Map<string, Float32Array>();
      const dir = path.join(root, key);
      await exportGptq({
        input: gguf, hf, output: dir, calib, bits: BITS, groupSize: GROUP, descAct, calibTokens: 512, ctx: 128, threads: 2,
        onSolved: (name, wts) => intended.set(name.slice(0, -'.weight'.length), wts),
      });
      runs[key] = { dir, intended };
    }
  }, 180_000);
  afterAll(() => { if (root) rmSync(root, { recursive: true, force: true }); });

  it.each(['plain', 'descAct'] as const)('%s: the independent decoder gives back the weights the solver intended, bit for bit', async (key) => {
    const { dir, intended } = runs[key];
    const ck = await SafetensorsCheckpoint.open(dir);
    try {
      const bad: string[] = [];
      for (const [m, want] of intended) {
        const got = await decode(ck, m, BITS);
        const i = want.findIndex((v, k) => v !== got[k]);
        if (i >= 0 || got.length !== want.length) bad.push(`${m}[${i}] ${got[i]} vs ${want[i]}`);
      }
      expect({ modules: intended.size, bad }).toEqual({ modules: 25, bad: [] });
    } finally {
      await ck.close();
    }
  });

  it('the intended weights are the original HF weights within 4-bit rounding (names and row/column orders undone)', async () => {
    const orig = await SafetensorsCheckpoint.open(hf);
    try {
      const worst: [string, number][] = [];
      for (const [m, want] of runs.plain.intended) {
        const w = await orig.readF32(`${m}.weight`);
        let e = 0, n = 0;
        for (let k = 0; k < w.length; k++) { e += (w[k]! - want[k]!) ** 2; n += w[k]! ** 2; }
        worst.push([m, Math.sqrt(e / n)]);
      }
      worst.sort((a, b) => b[1] - a[1]);
      expect(worst[0]![1]).toBeLessThan(0.25);
    } finally {
      await orig.close();
    }
  });

  it('desc-act: g_idx puts 32 input columns in each group, not in input order', async () => {
    const ck = await SafetensorsCheckpoint.open(runs.descAct.dir);
    try {
      const m = 'model.language_model.layers.0.mlp.down_proj';
      const g = await raw(ck, `${m}.g_idx`);
      const idx = Array.from({ length: g.byteLength / 4 }, (_, i) => g.getInt32(4 * i, true));
      const counts = new Map<number, number>();
      for (const v of idx) counts.set(v, (counts.get(v) ?? 0) + 1);
      expect({ sizes: [...new Set(counts.values())], groups: counts.size, inOrder: idx.every((v, i) => v === Math.floor(i / GROUP)) })
        .toEqual({ sizes: [GROUP], groups: idx.length / GROUP, inOrder: false });
    } finally {
      await ck.close();
    }
  });

  it('names and shapes follow the HF module list; quantization_config says gptq v1, asymmetric', async () => {
    const [orig, ck] = await Promise.all([SafetensorsCheckpoint.open(hf), SafetensorsCheckpoint.open(runs.plain.dir)]);
    try {
      const want: Record<string, number[]> = {};
      for (const n of orig.names()) {
        const s = orig.info(n).shape;
        const m = n.slice(0, -'.weight'.length);
        const linear = /^model\.language_model\.layers\.\d+\.(self_attn|linear_attn|mlp)\.\w+_proj(_\w+)?\.weight$/.test(n);
        if (linear && s[1]! % GROUP === 0 && s[0]! % (32 / BITS) === 0) {
          Object.assign(want, {
            [`${m}.qweight`]: [s[1]! / 8, s[0]!], [`${m}.qzeros`]: [s[1]! / GROUP, s[0]! / 8],
            [`${m}.scales`]: [s[1]! / GROUP, s[0]!], [`${m}.g_idx`]: [s[1]!],
          });
        } else want[n] = [...s];
      }
      const got = Object.fromEntries(ck.names().map((n) => [n, [...ck.info(n).shape]]));
      const cfg = JSON.parse(await fs.readFile(path.join(runs.plain.dir, 'config.json'), 'utf8')) as { quantization_config: Record<string, unknown> };
      const { quant_method, bits, group_size, desc_act, sym, checkpoint_format, true_sequential } = cfg.quantization_config;
      expect({ got, qc: { quant_method, bits, group_size, desc_act, sym, checkpoint_format, true_sequential }, tokenizer: await fs.stat(path.join(runs.plain.dir, 'tokenizer.json')).then(() => true) })
        .toEqual({ got: want, qc: { quant_method: 'gptq', bits: 4, group_size: 32, desc_act: false, sym: false, checkpoint_format: 'gptq', true_sequential: true }, tokenizer: true });
    } finally {
      await orig.close();
      await ck.close();
    }
  });

  it('a run that stops after 10 linears resumes from them and writes the same files as an uninterrupted run', async () => {
    const dir = path.join(root, 'resumed');
    const ckDir = `${dir}.gptq-checkpoint`;
    const opts = { input: gguf, hf, output: dir, calib, bits: BITS, groupSize: GROUP, calibTokens: 512, ctx: 128, threads: 2 };
    let n = 0;
    const stop = exportGptq({ ...opts, onSolved: () => { if (++n === 10) throw new Error('stopped'); } });
    await expect(stop).rejects.toThrow('stopped');
    const finished = (await fs.readdir(ckDir)).filter((f) => f.endsWith('.bin')).length;
    const logs: string[] = [];
    await exportGptq({ ...opts, log: (l) => logs.push(l) });
    const same: Record<string, boolean> = {};
    for (const f of (await fs.readdir(runs.plain.dir)).sort()) {
      same[f] = (await fs.readFile(path.join(dir, f))).equals(await fs.readFile(path.join(runs.plain.dir, f)));
    }
    expect({
      finished, resumed: logs.some((l) => l.includes('resuming with 10 finished linears')), checkpointLeft: await fs.stat(ckDir).then(() => true, () => false),
      differ: Object.entries(same).filter(([, eq]) => !eq).map(([f]) => f),
    }).toEqual({ finished: 10, resumed: true, checkpointLeft: false, differ: [] });
  }, 180_000);
});

