// Weights mapped from the file compute what copied weights compute, the in-graph scoring (ScoreHead)
// equals the log-softmax of the logits read back, and the KL base rows it stores in a mapped file are
// those log-softmax rows, the same whether the graph writes the mapping or they are copied to it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LogProbFile, logSoftmaxAt, Model, NllStats, ScoreHead, scoredPositions, scoreWindow } from '../src/index.js';
import { fixtureGguf, tokenIds, type FixtureGguf } from './helpers.js';

describe('mapped weights and in-graph scoring', () => {
  let f: FixtureGguf;
  const tokens = tokenIds(48, 11);
  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3_5', layers: 4 }, 'f16');
  });
  afterAll(() => f?.cleanup());

  async function logitsOf(mmap: boolean): Promise<{ logits: Float32Array; mapped: boolean }> {
    const m = await Model.load(f.gguf, { device: 'cpu', threads: 1, mmap });
    const s = m.session({ nCtx: 64 });
    try {
      return { logits: s.eval(tokens, { logits: 'all' }).logits, mapped: m.weights.mapped !== undefined };
    } finally {
      s.free();
      m.free();
    }
  }

  it('gives the same logits from a mapped file as from copied weights', async () => {
    const a = await logitsOf(true), b = await logitsOf(false);
    expect([a.mapped, b.mapped]).toEqual([true, false]);
    expect(Buffer.compare(Buffer.from(a.logits.buffer), Buffer.from(b.logits.buffer))).toBe(0);
  });

  it('scores each position as the log-softmax of its logits row, argmax included', async () => {
    const m = await Model.load(f.gguf, { device: 'cpu', threads: 1 });
    const s = m.session({ nCtx: 64, nBatch: 20 }); // the scored rows span chunks
    try {
      const pos = scoredPositions(tokens.length);
      const { logits } = s.eval(tokens, { logits: pos });
      s.reset();
      const head = new ScoreHead(tokens);
      expect(s.eval(tokens, { logits: pos, hooks: head.hooks() }).logits.length).toBe(0);
      const V = m.params.nVocab;
      expect(head.rows.map((r) => r.pos)).toEqual(pos);
      head.rows.forEach((r, i) => {
        const row = logits.subarray(i * V, (i + 1) * V);
        expect(Math.abs(r.logProb - logSoftmaxAt(row, tokens[r.pos + 1]!))).toBeLessThan(1e-5);
        expect(row[r.top]).toBe(row.reduce((a, x) => Math.max(a, x), -Infinity));
      });
    } finally {
      s.free();
      m.free();
    }
  });

  it('stores the scored rows\' log-softmax in the KL base file, mapped or copied alike, and scores KL against it', async () => {
    const m = await Model.load(f.gguf, { device: 'cpu', threads: 1 });
    const s = m.session({ nCtx: 64, nBatch: 20 }); // the scored rows span chunks
    const V = m.params.nVocab;
    const pos = scoredPositions(tokens.length);
    const names = ['mapped', 'copied'].map((k) => path.join(path.dirname(f.gguf), `lp-${k}.f32`));
    const files = names.map((name, i) => LogProbFile.create(name, pos.length + 3, V, { copy: i === 1 }));
    try {
      const { logits } = s.eval(tokens, { logits: pos });
      // rows 3.. of the file: a window's rows need not start at row 0
      const rowsOf = (file: LogProbFile) => ({ file, row: (q: number) => 3 + q - pos[0]! });
      for (const file of files) scoreWindow(s, tokens, new NllStats(), { saveLogProbs: rowsOf(file) });
      const [mapped, copied] = names.map((name) => new Float32Array(readFileSync(name).buffer));
      expect(Buffer.compare(Buffer.from(mapped!.buffer), Buffer.from(copied!.buffer))).toBe(0);
      expect(mapped!.subarray(0, 3 * V).every((x) => x === 0)).toBe(true);
      let worst = 0;
      pos.forEach((q, i) => {
        const row = logits.subarray(i * V, (i + 1) * V);
        for (const t of [0, 7, V - 1]) worst = Math.max(worst, Math.abs(mapped![(3 + i) * V + t]! - logSoftmaxAt(row, t)));
      });
      expect(worst).toBeLessThan(1e-5);
      // against its own rows KL is exactly zero; against the rows of a shifted text it is not, and both read paths agree
      for (const file of files) expect(scoreWindow(s, tokens, new NllStats(), { base: rowsOf(file) }).every((r) => r.kl === 0)).toBe(true);
      const other = tokens.map((t) => (t + 1) % V);
      const kls = files.map((file) => scoreWindow(s, other, new NllStats(), { base: rowsOf(file) }).map((r) => r.kl!));
      expect(kls[0]).toEqual(kls[1]);
      expect(Math.min(...kls[0]!)).toBeGreaterThan(0);
    } finally {
      for (const file of files) file.close();
      s.free();
      m.free();
    }
  });
});
