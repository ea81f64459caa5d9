// A request's sampler chain in libllama, in llama-server's order: logit bias, penalties, grammar,
// top-k, top-p, min-p, temperature, then the pick (greedy at temperature 0, else a seeded draw).
import type { Sampling } from '../generate.js';
import type { LlamaDirect } from './direct.js';

/** LLAMA_DEFAULT_SEED: llama.cpp draws a random seed. */
const RANDOM_SEED = 0xffffffff;

export interface GrammarText {
  gbnf: string;
  root: string;
}

export class SamplerChain {
  private freed = false;
  private constructor(
    private readonly direct: LlamaDirect,
    readonly chain: unknown,
  ) {}

  /** `history`: the prompt, whose last repeatLastN tokens the penalties count as llama-server does. */
  static create(direct: LlamaDirect, s: Sampling, grammar: GrammarText | undefined, history: readonly number[]): SamplerChain {
    const f = direct.f;
    const chain = f.chainInit(f.chainDefaults());
    const add = (smpl: unknown): void => {
      if (!smpl) throw new Error('libllama returned no sampler');
      f.chainAdd(chain, smpl);
    };
    try {
      if (s.logitBias && s.logitBias.size > 0) {
        const biases = [...s.logitBias].map(([token, b]) => ({ token, bias: b <= -100 ? -Infinity : b }));
        add(f.logitBias(direct.nVocab, biases.length, biases));
      }
      if (s.presencePenalty !== 0 || s.frequencyPenalty !== 0 || s.repeatPenalty !== 1) {
        const pen = f.penalties(direct.nVocab, s.repeatLastN, s.repeatPenalty, s.frequencyPenalty, s.presencePenalty);
        for (const t of history.slice(-s.repeatLastN)) f.samplerAccept(pen, t);
        add(pen);
      }
      if (grammar) {
        const g = f.grammar(direct.vocab, grammar.gbnf, grammar.root);
        if (!g) throw new Error('llama.cpp could not parse the grammar');
        add(g);
      }
      if (s.temperature <= 0) add(f.greedy());
      else {
        if (s.topK > 0) add(f.topK(s.topK));
        if (s.topP < 1) add(f.topP(s.topP, 1));
        if (s.minP > 0) add(f.minP(s.minP, 1));
        add(f.temp(s.temperature));
        add(f.dist(s.seed === undefined ? RANDOM_SEED : s.seed >>> 0));
      }
    } catch (err) {
      f.samplerFree(chain);
      throw err;
    }
    return new SamplerChain(direct, chain);
  }

  /** Samples from the logits of batch row `idx` of the last decode and accepts the token into every sampler. */
  sample(idx: number): number {
    return this.direct.f.samplerSample(this.chain, this.direct.ctx, idx) as number;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.direct.f.samplerFree(this.chain);
  }
}
