// libllama driven from the JS thread decodes the same model node-llama-cpp does: greedy tokens equal,
// and sequences packed into one decode per step give what they give one at a time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getLlama, LlamaLogLevel, type Token } from 'node-llama-cpp';
import { LlamaDirect } from '../src/llama/direct.js';
import { DecodeScheduler } from '../src/llama/scheduler.js';
import { SamplerChain } from '../src/llama/sampler.js';
import { DEFAULT_SAMPLING, type Sampling } from '../src/generate.js';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const TOKENS = 16;
const CONTEXT = 512;
/** Smaller than the long prompt below, which then goes in chunks over several steps. */
const BATCH = 128;
const GREEDY = { ...DEFAULT_SAMPLING, temperature: 0 };
const prompts = ['The river', 'Once upon a time in a small town', 'def add(a, b):', 'Count: 1, 2, 3,'];

let tiny: TinyModel;
let direct: LlamaDirect;
let scheduler: DecodeScheduler;
let tokenized: number[][];

beforeAll(async () => {
  tiny = await buildTinyModel('qwen3_5');
  direct = LlamaDirect.load({ model: tiny.gguf, contextSize: CONTEXT, sequences: 4, threads: 1, batchSize: BATCH, loras: [] });
  scheduler = new DecodeScheduler(direct);
  tokenized = prompts.map((p) => direct.tokenize(p));
});

afterAll(async () => {
  scheduler?.dispose();
  direct?.dispose();
  await tiny?.cleanup();
});

async function greedy(id: number, prompt: readonly number[], sampling: Sampling = GREEDY): Promise<number[]> {
  const run = scheduler.open(id, prompt, SamplerChain.create(direct, sampling, undefined, prompt), false);
  const out: number[] = [];
  try {
    while (out.length < TOKENS) out.push((await run.next()).token);
  } finally {
    run.close();
  }
  return out;
}

describe('LlamaDirect', () => {
  /** node-llama-cpp's greedy tokens for `prompt` on a fresh context. */
  async function nodeLlamaCppGreedy(prompt: readonly number[]): Promise<number[]> {
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error });
    const model = await llama.loadModel({ modelPath: tiny.gguf });
    const context = await model.createContext({ sequences: 1, contextSize: CONTEXT, threads: 1 });
    const out: number[] = [];
    for await (const t of context.getSequence().evaluate(prompt as Token[], { temperature: 0 })) {
      out.push(t);
      if (out.length >= TOKENS) break;
    }
    await context.dispose();
    await model.dispose();
    return out;
  }

  it('generates the greedy tokens node-llama-cpp generates', async () => {
    const expected = await nodeLlamaCppGreedy(tokenized[1]!);
    expect(expected).toHaveLength(TOKENS);
    expect(await greedy(0, tokenized[1]!)).toEqual(expected);
  });

  it('reads a prompt longer than the batch in chunks, with the greedy tokens node-llama-cpp generates', async () => {
    const long = direct.tokenize(Array.from({ length: 40 }, (_, i) => `Line ${i}: the river runs to the sea.`).join('\n'));
    expect(long.length).toBeGreaterThan(2 * BATCH);
    const before = scheduler.stats.calls;
    const out = await greedy(2, long);
    expect({ out, steps: scheduler.stats.calls - before }).toEqual({ out: await nodeLlamaCppGreedy(long), steps: Math.ceil(long.length / BATCH) + TOKENS - 1 });
  });

  it('gives 4 concurrent greedy runs the tokens of 4 sequential ones, in packed decodes', async () => {
    const sequential: number[][] = [];
    for (const p of tokenized) sequential.push(await greedy(0, p));
    const before = { ...scheduler.stats };
    const concurrent = await Promise.all(tokenized.map((p, i) => greedy(i, p)));
    const calls = scheduler.stats.calls - before.calls;
    expect({ concurrent, packed: calls <= TOKENS + 1 }).toEqual({ concurrent: sequential, packed: true });
  });

  it('draws the same tokens twice from one seed at temperature 1', async () => {
    const seeded = { ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1234 };
    const first = await greedy(0, tokenized[0]!, seeded);
    expect(await greedy(1, tokenized[0]!, seeded)).toEqual(first);
  });

  it('draws other tokens than greedy at temperature 1 (the seeded draw is not an argmax)', async () => {
    const seeded = { ...DEFAULT_SAMPLING, temperature: 1, topK: 0, topP: 1, minP: 0, seed: 1234 };
    expect(await greedy(0, tokenized[0]!, seeded)).not.toEqual(await greedy(1, tokenized[0]!));
  });

  it('gives a token favoured by logit_bias once under a strong presence penalty, where it would repeat', async () => {
    const favoured = tokenized[0]![0]!;
    const biased = { ...GREEDY, logitBias: new Map([[favoured, 30]]) };
    const count = (xs: number[]): number => xs.filter((t) => t === favoured).length;
    const plain = await greedy(0, tokenized[3]!, biased);
    const penalized = await greedy(0, tokenized[3]!, { ...biased, presencePenalty: 60 });
    expect({ plain: count(plain), penalized: count(penalized) }).toEqual({ plain: TOKENS, penalized: 1 });
  });

  it('keeps a greedy run inside a grammar and ends it with end-of-generation once the grammar is complete', async () => {
    const prompt = tokenized[0]!;
    const grammar = { gbnf: 'root ::= [abc]+ "."', root: 'root' };
    const run = scheduler.open(0, prompt, SamplerChain.create(direct, GREEDY, grammar, prompt), false);
    const out: number[] = [];
    try {
      while (out.length < 40) {
        const t = (await run.next()).token;
        if (direct.isEog(t)) break;
        out.push(t);
      }
    } finally {
      run.close();
    }
    const text = Buffer.concat(out.map((t) => direct.piece(t, false))).toString('utf8');
    expect(text).toMatch(/^[abc]+\.$/);
  });

  it('stops reading a long prompt between chunks once its request is aborted', async () => {
    const long = direct.tokenize(Array.from({ length: 40 }, (_, i) => `Line ${i}: the lake is still.`).join('\n'));
    expect(long.length).toBeGreaterThan(2 * BATCH);
    const abort = new AbortController();
    const run = scheduler.open(3, long, SamplerChain.create(direct, GREEDY, undefined, long), false, abort.signal);
    const before = scheduler.stats.calls;
    const next = run.next();
    setImmediate(() => abort.abort()); // after the first step
    await expect(next).rejects.toThrow();
    run.close();
    expect(scheduler.stats.calls - before).toBe(1);
  });
});
