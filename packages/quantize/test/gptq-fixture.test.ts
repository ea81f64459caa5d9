// GPTQ on every matmul weight of a converted qwen3_5 fixture, Hessians collected by the engine: the output
// error ‖(W − Ŵ)X‖² on held-out activations (other token windows than the calibration's) is below plain
// rounding and below importance-weighted (imatrix) rounding, for every tensor kind, at Q4_K, Q3_K and IQ4_XS.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, decodeToF32, type GgmlTypeName } from '@qtk/core';
import { generateFixture, mulberry32 } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { HessianCollector, Model, type HessianEntry } from '@qtk/engine';
import { getCodec } from '../src/codecs/index.js';
import { prepareHessian } from '../src/gptq/hessian.js';
import { gptqQuantizeRows } from '../src/gptq/solver.js';

const TYPES: GgmlTypeName[] = ['Q4_K', 'Q3_K', 'IQ4_XS'];
const VOCAB = 151936; // the fixture ships the real Qwen3 tokenizer, so its vocabulary is full size
/** Rows measured per tensor (rows are independent given H; output.weight has one per token). */
const MAX_ROWS = 512;
let dir: string;
let f16: string;

/** Text-like token windows: ids drawn by a Zipf law over a fixed set of 512 ids (frequent words dominate),
 *  so the activations have the correlated structure that GPTQ exploits; uniform random ids give nearly white
 *  inputs, where importance-weighted rounding is already optimal. */
function windows(seed: number, n: number, len: number): number[][] {
  const pick = mulberry32(1234);
  const ids = Array.from({ length: 512 }, () => Math.floor(pick() * VOCAB));
  const cdf: number[] = [];
  let total = 0;
  for (let k = 0; k < ids.length; k++) cdf.push((total += 1 / (k + 1)));
  const r = mulberry32(seed);
  const draw = () => { const u = r() * total; let k = 0; while (cdf[k]! < u) k++; return ids[k]!; };
  return Array.from({ length: n }, () => Array.from({ length: len }, draw));
}

async function hessians(model: Model, ws: number[][]): Promise<HessianCollector> {
  const col = new HessianCollector((name) => name.startsWith('blk.') || name === 'output.weight');
  const hooks = col.hooks();
  const s = model.session({ nCtx: ws[0]!.length, nBatch: ws[0]!.length });
  try {
    // output.weight's input is seen at the positions whose logits are asked for: every 4th keeps the cost down
    const every4 = [...Array(ws[0]!.length / 4).keys()].map((i) => 4 * i);
    for (const w of ws) { s.reset(); s.eval(w, { logits: every4, hooks }); }
  } finally {
    s.free();
  }
  return col;
}

/** Σ_rows d H dᵀ with d = W − Ŵ: the output error over the tokens H was summed from (up to 2/n). */
function outputError(W: Float32Array, Wq: Float32Array, nRows: number, e: HessianEntry): number {
  const n = e.nIn;
  const d = new Float64Array(n);
  let s = 0;
  for (let r = 0; r < nRows; r++) {
    for (let j = 0; j < n; j++) d[j] = W[r * n + j]! - Wq[r * n + j]!;
    for (let i = 0; i < n; i++) {
      let t = 0;
      for (let j = 0; j < n; j++) t += e.sum[i * n + j]! * d[j]!;
      s += d[i]! * t;
    }
  }
  return s;
}

describe('GPTQ on the qwen3_5 fixture', () => {
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-gptq-'));
    // 256-wide everywhere (value heads 4 × 64 for ssm_out) so that the k-quants and IQ4_XS apply to every kind
    const fx = await generateFixture({
      arch: 'qwen3_5', outDir: path.join(dir, 'hf'), seed: 7, layers: 4, hidden: 256, heads: 4, kvHeads: 2, headDim: 64,
      linearValueHeads: 4, linearValueHeadDim: 64, linearKeyHeadDim: 64,
    });
    f16 = path.join(dir, 'fx-F16.gguf');
    await convertCheckpoint({ input: fx.dir, output: f16, outtype: 'f16', log: () => {} });
  }, 300_000);
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('beats plain and imatrix rounding on held-out activations for every tensor kind', async () => {
    const model = await Model.load(f16, { threads: 2 });
    let cal: HessianCollector, held: HessianCollector;
    try {
      cal = await hessians(model, windows(1, 16, 256));
      held = await hessians(model, windows(2, 4, 256));
    } finally {
      model.free();
    }
    const reader = await GgufReader.open(f16);
    const rows: string[] = [];
    const losses: string[] = [];
    try {
      const names = reader.tensors.map((t) => t.name).filter((n) => cal.entryFor(n) && reader.tensor(n).ne[0]! % 256 === 0);
      // one tensor per kind: the first layer that has it
      const kinds = new Map<string, string>();
      for (const n of names) { const k = n.replace(/^blk\.\d+\./, ''); if (!kinds.has(k)) kinds.set(k, n); }
      expect([...kinds.keys()].sort()).toEqual([
        'attn_gate.weight', 'attn_k.weight', 'attn_output.weight', 'attn_q.weight', 'attn_qkv.weight', 'attn_v.weight',
        'ffn_down.weight', 'ffn_gate.weight', 'ffn_up.weight', 'output.weight', 'ssm_alpha.weight', 'ssm_beta.weight', 'ssm_out.weight',
      ]);
      for (const [kind, name] of kinds) {
        const info = reader.tensor(name);
        const n = info.ne[0]!, nRows = Math.min(MAX_ROWS, info.ne[1]!);
        const W = decodeToF32(info.type as 'F16' | 'F32', await reader.readTensorRange(info, 0, nRows * n * (info.type === 'F32' ? 4 : 2)));
        const c = cal.entryFor(name)!, h = held.entryFor(name)!;
        const H = HessianCollector.hessian(c);
        const imatrix = Float32Array.from({ length: n }, (_, i) => c.sum[i * n + i]!);
        for (const type of TYPES) {
          const codec = getCodec(type)!;
          const plain = (qw?: Float32Array) => {
            const b = new Uint8Array((nRows * n / codec.blockSize) * codec.typeSize);
            codec.quantizeBlocks(W, b, nRows, n, qw);
            const out = new Float32Array(nRows * n);
            codec.dequantizeBlocks(b, out, nRows * n);
            return out;
          };
          const g = gptqQuantizeRows(type, W, nRows, prepareHessian(H, n, { groupSize: 256 }), { dequantized: true }).dequantized!;
          const eG = outputError(W, g, nRows, h), eR = outputError(W, plain(), nRows, h), eI = outputError(W, plain(imatrix), nRows, h);
          rows.push(`${kind.padEnd(20)} ${type.padEnd(7)} gptq/rtn ${(eG / eR).toFixed(3)}  gptq/imatrix ${(eG / eI).toFixed(3)}`);
          if (!(eG < eR && eG < eI)) losses.push(`${name} ${type}: gptq ${eG} rtn ${eR} imatrix ${eI}`);
        }
      }
    } finally {
      await reader.close();
    }
    console.log(rows.join('\n'));
    expect(losses).toEqual([]);
  }, 600_000);
});
