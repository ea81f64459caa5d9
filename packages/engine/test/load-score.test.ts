// Weights mapped from the file compute what copied weights compute, and the in-graph scoring
// (ScoreHead) equals the log-softmax of the logits read back.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { logSoftmaxAt, Model, ScoreHead, scoredPositions } from '../src/index.js';
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
});
