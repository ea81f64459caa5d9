// Walking the model layer by layer (the `layers` hook, used by true-sequential GPTQ calibration): the
// residual stream read out after layer k and fed back in at layer k+1 gives the full model's logits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Model } from '../src/index.js';
import { fixtureGguf, tokenIds, type FixtureGguf } from './helpers.js';

describe('layer-by-layer evaluation', () => {
  let f: FixtureGguf;
  const tokens = tokenIds(40, 5);
  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3_5', layers: 4 }, 'f32');
  });
  afterAll(() => f?.cleanup());

  it('one layer at a time through the residual stream equals the whole model (logits bit for bit)', async () => {
    const m = await Model.load(f.gguf, { device: 'cpu', threads: 1 });
    const s = m.session({ nCtx: 64 });
    try {
      const whole = s.eval(tokens, { logits: 'all' }).logits;
      const L = m.params.nLayer;
      let x: Float32Array | undefined;
      for (let il = 0; il < L - 1; il++) {
        s.reset();
        const output = new Float32Array(tokens.length * m.params.nEmbd);
        s.eval(tokens, { logits: 'none', hooks: { layers: { from: il, to: il, input: x, output } } });
        x = output;
      }
      s.reset();
      const last = s.eval(tokens, { logits: 'all', hooks: { layers: { from: L - 1, to: L - 1, input: x } } }).logits;
      expect(Buffer.compare(Buffer.from(last.buffer), Buffer.from(whole.buffer))).toBe(0);
    } finally {
      s.free();
      m.free();
    }
  });

  it('refuses to start past layer 0 without the residual input', async () => {
    const m = await Model.load(f.gguf, { device: 'cpu', threads: 1 });
    const s = m.session({ nCtx: 64 });
    try {
      expect(() => s.eval(tokens, { logits: 'none', hooks: { layers: { from: 1, to: 1 } } })).toThrow(/needs the residual input/);
    } finally {
      s.free();
      m.free();
    }
  });
});
