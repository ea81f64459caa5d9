// Shared by the llama.cpp oracle tests: load a GGUF in node-llama-cpp, read its next-token distribution
// at every position, and compare it with the plain-TS reference forward on the HF files.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'vitest';
import { getLlama, type Llama, type LlamaModel, type Token } from 'node-llama-cpp';
import { TokenizerLoader } from '@lenml/tokenizers';
import { generateFixture, type FixtureOptions } from '@qtk/fixtures';

let llamaPromise: Promise<Llama> | undefined;
export function cpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  return llamaPromise;
}

/** A GGUF loaded once: its log-softmax at every position of `tokens`, and a short generation. */
export interface LlamaRun {
  /** [T][vocab] log p of the next token, or undefined when a probability was not reported. */
  logProbs: Float64Array[];
  generated: string;
  tokenize(text: string): number[];
}

export async function runGguf(path: string, tokens: number[], vocab: number, opts: { generateFrom?: string; tokenizeTexts?: string[] } = {}): Promise<LlamaRun & { tokenized: number[][] }> {
  const llama = await cpuLlama();
  const model: LlamaModel = await llama.loadModel({ modelPath: path });
  try {
    // 2 threads: more only contend on the shared test machine (8 tokens took 30 s with the default).
    const ctx = await model.createContext({ contextSize: 128, threads: 2 });
    try {
      const seq = ctx.getSequence();
      const res = await seq.controlledEvaluate(tokens.map((t) => [t as Token, { generateNext: { probabilities: true } }]));
      const logProbs = res.map((r, i) => {
        const probs = r?.next?.probabilities;
        if (!probs) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
        // Tokens llama.cpp leaves out had probability 0 in f32: log p = −∞, which fails any tolerance.
        const out = new Float64Array(vocab).fill(Number.NEGATIVE_INFINITY);
        for (const [tok, p] of probs) out[tok] = Math.log(p);
        return out;
      });
      await seq.clearHistory();
      let generated = '';
      if (opts.generateFrom !== undefined) {
        const { LlamaCompletion } = await import('node-llama-cpp');
        const completion = new LlamaCompletion({ contextSequence: seq });
        generated = await completion.generateCompletion(opts.generateFrom, { maxTokens: 6, temperature: 0 });
      }
      const tokenize = (text: string) => [...model.tokenize(text, true)].map(Number);
      return { logProbs, generated, tokenize, tokenized: (opts.tokenizeTexts ?? []).map(tokenize) };
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** log-softmax of one row of reference logits, in float64. */
export function logSoftmax(logits: Float32Array, offset: number, n: number): Float64Array {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < n; i++) max = Math.max(max, logits[offset + i]!);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += Math.exp(logits[offset + i]! - max);
  const lse = max + Math.log(sum);
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = logits[offset + i]! - lse;
  return out;
}

export interface Agreement {
  /** max over positions and the whole vocabulary of |log p_llama − log p_ref|. */
  maxAbsDiff: number;
  /** Positions where the top-1 token differs although the reference's top-2 gap exceeds `tieMargin`. */
  top1Mismatches: number[];
  /** Positions where the top-1 differs inside a genuine near-tie (reference gap ≤ tieMargin). */
  nearTies: number[];
}

const argmax2 = (a: Float64Array) => {
  let i1 = 0;
  let i2 = -1;
  for (let i = 1; i < a.length; i++) {
    if (a[i]! > a[i1]!) { i2 = i1; i1 = i; } else if (i2 < 0 || a[i]! > a[i2]!) i2 = i;
  }
  return [i1, i2] as const;
};

export function compareWithReference(llamaLogProbs: Float64Array[], refLogits: Float32Array, vocab: number, tieMargin: number): Agreement {
  let maxAbsDiff = 0;
  const top1Mismatches: number[] = [];
  const nearTies: number[] = [];
  llamaLogProbs.forEach((lp, t) => {
    const ref = logSoftmax(refLogits, t * vocab, vocab);
    for (let i = 0; i < vocab; i++) {
      const d = Math.abs(lp[i]! - ref[i]!);
      if (!(d <= maxAbsDiff)) maxAbsDiff = Number.isNaN(d) ? Number.POSITIVE_INFINITY : d;
    }
    const [r1, r2] = argmax2(ref);
    const [l1] = argmax2(lp);
    if (l1 !== r1) (ref[r1]! - ref[r2]! <= tieMargin ? nearTies : top1Mismatches).push(t);
  });
  return { maxAbsDiff, top1Mismatches, nearTies };
}

/** The oracle assertion every conversion test makes: same top-1 outside near-ties, |Δ log p| under `tolerance`. */
export function expectAgreement(label: string, llamaLogProbs: Float64Array[], ref: { logits: Float32Array; vocab: number }, tolerance: number): Agreement {
  const a = compareWithReference(llamaLogProbs, ref.logits, ref.vocab, tolerance);
  console.log(`${label}: max |Δ log p| = ${a.maxAbsDiff.toFixed(4)} over ${llamaLogProbs.length} positions × ${ref.vocab}; near-ties ${a.nearTies.length}`);
  expect(a.top1Mismatches).toEqual([]);
  expect(a.maxAbsDiff).toBeLessThan(tolerance);
  return a;
}

/** A generated HF fixture in a fresh temp folder, with its tokenizer loaded as transformers would and `text` encoded. */
export async function tokenizedFixture(opts: Omit<FixtureOptions, 'outDir'>, text: string): Promise<{ root: string; dir: string; hf: { encode(text: string): number[] }; tokens: number[] }> {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), `qtk-convert-${opts.arch}-`));
  const { dir } = await generateFixture({ ...opts, outDir: path.join(root, 'hf') });
  const hf = TokenizerLoader.fromPreTrained({
    tokenizerJSON: JSON.parse(await fs.readFile(path.join(dir, 'tokenizer.json'), 'utf8')),
    tokenizerConfig: JSON.parse(await fs.readFile(path.join(dir, 'tokenizer_config.json'), 'utf8')),
  });
  return { root, dir, hf, tokens: hf.encode(text) };
}
