// Text → token ids with llama.cpp's own tokenizer (vocabulary-only load), so the ids equal what
// llama-perplexity and llama-imatrix evaluate: common_tokenize(text, add_special=true,
// parse_special=false) = BOS first when the vocabulary asks for it, special-token text kept literal.
// Text files go through libllama directly (llama-vocab.ts); datasets check their vocabulary through
// node-llama-cpp (withLlamaVocab).
import { promises as fs } from 'node:fs';
import { QtkError } from '@qtk/core';
import { llamaTokenize } from './llama-vocab.js';

export interface Tokenized {
  tokens: number[];
  /** The id llama.cpp puts at the start of every window, when the vocabulary adds BOS. */
  bos: number | undefined;
}

// one CPU llama.cpp instance per process: each getLlama() makes a new one (and a beforeExit listener)
let cpuLlama: Promise<import('node-llama-cpp').Llama> | undefined;

/** Runs `fn` on the GGUF's vocabulary loaded by llama.cpp (vocabulary only, no weights). */
export async function withLlamaVocab<T>(ggufPath: string, fn: (model: import('node-llama-cpp').LlamaModel) => T | Promise<T>): Promise<T> {
  cpuLlama ??= import('node-llama-cpp').then(({ getLlama }) => getLlama({ gpu: false, build: 'never', logLevel: 'error' as never }));
  const llama = await cpuLlama;
  const model = await llama.loadModel({ modelPath: ggufPath, vocabOnly: true });
  try {
    return await fn(model);
  } finally {
    await model.dispose();
  }
}

/** The id llama.cpp puts first in every window, when this vocabulary adds BOS. */
export function llamaWindowBos(model: import('node-llama-cpp').LlamaModel): number | undefined {
  const bos = model.tokens.bos === null ? undefined : Number(model.tokens.bos);
  return model.tokens.shouldPrependBosToken && bos !== undefined ? bos : undefined;
}

/** A text file's ids as llama-perplexity gets them (llama.cpp's tokenizer, called directly: llama-vocab.ts). */
export async function tokenizeWithLlama(ggufPath: string, text: string): Promise<Tokenized> {
  return llamaTokenize(ggufPath, text);
}

export async function readTextFile(file: string): Promise<string> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch (e) {
    throw new QtkError(`${file}: cannot read the data file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}). Pass --data with a UTF-8 text file.`, { file, cause: e });
  }
}

/**
 * llama-perplexity's windows: floor(n / nCtx) non-overlapping windows of nCtx tokens; the first
 * token of each becomes BOS when the vocabulary adds one. Needs at least 2 × nCtx tokens.
 */
export function contextWindows(t: Tokenized, nCtx: number, what: string): number[][] {
  if (!Number.isInteger(nCtx) || nCtx < 4) throw new QtkError(`--ctx ${nCtx} is too small. Pass --ctx 4 or more (llama.cpp uses 512).`);
  if (t.tokens.length < 2 * nCtx) {
    throw new QtkError(`${what} gives ${t.tokens.length} tokens; a context of ${nCtx} needs at least ${2 * nCtx} (as llama-perplexity). Use more data or a smaller --ctx.`);
  }
  const n = Math.floor(t.tokens.length / nCtx);
  return Array.from({ length: n }, (_, i) => {
    const w = t.tokens.slice(i * nCtx, (i + 1) * nCtx);
    if (t.bos !== undefined) w[0] = t.bos;
    return w;
  });
}
