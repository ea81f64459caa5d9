// A request's sampler chain in libllama, in llama-server's order: logit bias, penalties, top-k, top-p,
// min-p, temperature, then the pick (greedy at temperature 0, else a seeded draw). A grammar stays out of
// the chain: checking it on every candidate of a ~152k-token vocabulary costs more than the decode, so, as
// llama-server and node-llama-cpp do, the chain picks first and the grammar checks that one token; only
// when it refuses do grammar and chain run over all candidates.
import { koffi } from '@qtk/engine';
import type { Sampling } from '../generate.js';
import type { LlamaDirect } from './direct.js';

/** sizeof(llama_token_data): int32 id, float logit, float p. */
const TOKEN_DATA_BYTES = 12;
/** llama_token_data_array: data pointer, size_t size, int64 selected, bool sorted (padded to 32). */
const ARRAY_BYTES = 32;

/** Candidate arrays for the grammar path, one set per context (sampling runs on the JS thread only). */
class Candidates {
  readonly all: unknown;
  readonly allAddress: bigint;
  readonly allArray = Buffer.alloc(ARRAY_BYTES);
  readonly one: unknown;
  readonly oneAddress: bigint;
  readonly oneArray = Buffer.alloc(ARRAY_BYTES);
  private readonly ids: Int32Array;
  private readonly logits: Float32Array;
  private readonly oneView: DataView;

  constructor(readonly nVocab: number) {
    this.all = koffi.alloc('uint8_t', nVocab * TOKEN_DATA_BYTES);
    this.allAddress = koffi.address(this.all);
    const buf = koffi.view(this.all, nVocab * TOKEN_DATA_BYTES);
    this.ids = new Int32Array(buf);
    this.logits = new Float32Array(buf);
    this.one = koffi.alloc('uint8_t', TOKEN_DATA_BYTES);
    this.oneAddress = koffi.address(this.one);
    this.oneView = new DataView(koffi.view(this.one, TOKEN_DATA_BYTES));
  }

  free(): void {
    koffi.free(this.all);
    koffi.free(this.one);
  }

  /** Every token with its logit, unsorted, nothing selected. */
  fill(logits: Float32Array): Buffer {
    for (let i = 0, j = 0; i < this.nVocab; i++, j += 3) {
      this.ids[j] = i;
      this.logits[j + 1] = logits[i]!;
      this.logits[j + 2] = 0;
    }
    return setArray(this.allArray, this.allAddress, this.nVocab);
  }

  /** The token the sampler picked from `array` (its data pointer may have moved). */
  selected(array: Buffer): number {
    const sel = Number(array.readBigInt64LE(16));
    if (sel < 0) throw new Error('the sampler chain selected no token');
    const data = array.readBigUInt64LE(0);
    return new DataView(koffi.view(data, (sel + 1) * TOKEN_DATA_BYTES)).getInt32(sel * TOKEN_DATA_BYTES, true);
  }

  /** True when `sampler` leaves `token` a finite logit. */
  allows(sampler: unknown, apply: (s: unknown, a: Buffer) => void, token: number): boolean {
    this.oneView.setInt32(0, token, true);
    this.oneView.setFloat32(4, 1, true);
    this.oneView.setFloat32(8, 0, true);
    apply(sampler, setArray(this.oneArray, this.oneAddress, 1));
    return this.oneView.getFloat32(4, true) !== -Infinity;
  }
}

function setArray(array: Buffer, data: bigint, size: number): Buffer {
  array.writeBigUInt64LE(data, 0);
  array.writeBigUInt64LE(BigInt(size), 8);
  array.writeBigInt64LE(-1n, 16);
  array.fill(0, 24);
  return array;
}

const candidates = new WeakMap<LlamaDirect, Candidates>();

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
    private readonly grammar: unknown,
  ) {}

  /** `history`: the prompt, whose last repeatLastN tokens the penalties count as llama-server does. */
  static create(direct: LlamaDirect, s: Sampling, grammar: GrammarText | undefined, history: readonly number[]): SamplerChain {
    const f = direct.f;
    const chain = f.chainInit(f.chainDefaults());
    let grammarSampler: unknown = null;
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
      if (s.temperature <= 0) add(f.greedy());
      else {
        if (s.topK > 0) add(f.topK(s.topK));
        if (s.topP < 1) add(f.topP(s.topP, 1));
        if (s.minP > 0) add(f.minP(s.minP, 1));
        add(f.temp(s.temperature));
        add(f.dist(s.seed === undefined ? RANDOM_SEED : s.seed >>> 0));
      }
      if (grammar) {
        grammarSampler = f.grammar(direct.vocab, grammar.gbnf, grammar.root);
        if (!grammarSampler) throw new Error('llama.cpp could not parse the grammar');
      }
    } catch (err) {
      f.samplerFree(chain);
      throw err;
    }
    return new SamplerChain(direct, chain, grammarSampler);
  }

  /** Samples from the logits of batch row `idx` of the last decode and accepts the token into every sampler. */
  sample(idx: number): number {
    const d = this.direct;
    const f = d.f;
    if (!this.grammar) return f.samplerSample(this.chain, d.ctx, idx) as number;
    let c = candidates.get(d);
    if (!c) {
      const made = new Candidates(d.nVocab);
      candidates.set(d, (c = made));
      d.onDispose(() => made.free());
    }
    const logits = new Float32Array(koffi.view(f.logitsIth(d.ctx, idx), 4 * d.nVocab));
    const apply = (smpl: unknown, array: Buffer): void => void f.samplerApply(smpl, array);
    let array = c.fill(logits);
    apply(this.chain, array);
    let token = c.selected(array);
    if (!c.allows(this.grammar, apply, token)) {
      array = c.fill(logits);
      apply(this.grammar, array);
      apply(this.chain, array);
      token = c.selected(array);
    }
    f.samplerAccept(this.grammar, token);
    f.samplerAccept(this.chain, token);
    return token;
  }

  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.direct.f.samplerFree(this.chain);
    if (this.grammar) this.direct.f.samplerFree(this.grammar);
  }
}
