import { it } from 'vitest';
import { Model } from '../src/index.js';
import { fixtureGguf, tokenIds, convertTo } from './helpers.js';
import { llamaLogProbs, logSoftmax, compareLogProbs } from './llama-oracle.js';
it('scratch', async () => {
  for (const arch of ['qwen3', 'qwen3_5'] as const) {
    const f = await fixtureGguf({ arch }, 'f32');
    for (const gguf of [f.gguf, await convertTo(f.hfDir, 'f16')]) {
    const m = await Model.load(gguf, { device: 'cpu', threads: 2 });
    const s = m.session({ nCtx: 64 });
    const toks = tokenIds(24);
    const { logits } = s.eval(toks);
    const mine = logSoftmax(logits, m.params.nVocab);
    const ref = await llamaLogProbs(gguf, toks, m.params.nVocab);
    console.log(arch, gguf, compareLogProbs(ref, mine, m.params.nVocab));
    s.free(); m.free();
    }
    f.cleanup();
  }
});
