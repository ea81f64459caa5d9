// The token loop on one sequence: reuse the cached prompt prefix, sample with the request's
// settings, stop on EOG / stop strings / max tokens / abort, and stream text that can no longer
// turn out to be part of a stop string. Decoding and sampling happen in libllama (llama/), one
// packed llama_decode per step for all sequences.
import type { LlamaGrammar, Token } from 'node-llama-cpp';
import type { LlamaDirect } from './llama/direct.js';
import type { DecodeScheduler } from './llama/scheduler.js';
import { SamplerChain } from './llama/sampler.js';

export interface Sampling {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed?: number;
  presencePenalty: number;
  frequencyPenalty: number;
  /** llama-server's repeat_penalty (1 = off) over the last repeatLastN tokens. */
  repeatPenalty: number;
  repeatLastN: number;
  /** OpenAI logit_bias: token id → value added to its logit (-100 bans, +100 forces). */
  logitBias?: ReadonlyMap<number, number>;
}

/** `id` as llama-server adds it: two tokens (e.g. partial UTF-8 bytes) can share the same text. */
export interface TokenLogprob {
  id: number;
  token: string;
  logprob: number;
  bytes: number[];
  top: { id: number; token: string; logprob: number; bytes: number[] }[];
}

export interface GenerateRequest {
  prompt: Token[];
  maxTokens: number;
  sampling: Sampling;
  stop: string[];
  grammar?: LlamaGrammar;
  /** Number of alternatives per position; undefined = no logprobs. */
  logprobs?: number;
  signal: AbortSignal;
  /** Text that is final (not a possible stop-string prefix), in order. */
  onText?: (delta: string, logprobs: TokenLogprob[]) => void;
}

export interface GenerateResult {
  text: string;
  tokens: Token[];
  finishReason: 'stop' | 'length' | 'aborted';
  promptTokens: number;
  cachedTokens: number;
  logprobs: TokenLogprob[];
  promptSeconds: number;
  predictSeconds: number;
  /** Seconds from the call to the first sampled token. */
  firstTokenSeconds?: number;
}

export const DEFAULT_SAMPLING: Sampling = {
  // llama-server's defaults, which clients that send no sampling fields rely on.
  temperature: 0.8,
  topK: 40,
  topP: 0.95,
  minP: 0.05,
  presencePenalty: 0,
  frequencyPenalty: 0,
  repeatPenalty: 1,
  repeatLastN: 64,
};

/** Length of the longest suffix of `text` that is a proper prefix of one of `stops`. */
export function partialStopLength(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

function logprobOf(logit: number, logSum: number): number {
  return Number.isFinite(logit) ? logit - logSum : -9999;
}

/** log Σ exp(logits), and the `n` most likely ids in descending order. */
function softmaxTop(logits: Float32Array, n: number): { logSum: number; top: number[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const top: number[] = [];
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i]!;
    if (top.length === n && v <= logits[top[n - 1]!]!) continue;
    let j = top.length < n ? top.length : n - 1;
    while (j > 0 && logits[top[j - 1]!]! < v) j--;
    top.splice(j, 0, i);
    if (top.length > n) top.pop();
  }
  return { logSum: max + Math.log(sum), top };
}

export interface Decoder {
  direct: LlamaDirect;
  scheduler: DecodeScheduler;
  /** The sequence the request runs on. */
  sequence: number;
}

export async function generate(dec: Decoder, req: GenerateRequest): Promise<GenerateResult> {
  const t0 = performance.now();
  const { prompt } = req;
  const { direct } = dec;
  const grammar = req.grammar ? { gbnf: req.grammar.grammar, root: req.grammar.rootRuleName } : undefined;
  const sampler = SamplerChain.create(direct, req.sampling, grammar, prompt);
  const wantProbs = req.logprobs !== undefined;
  let run;
  try {
    run = dec.scheduler.open(dec.sequence, prompt, sampler, wantProbs, req.signal);
  } catch (err) {
    sampler.free();
    throw err;
  }
  const cachedTokens = run.cachedTokens;
  const generated: Token[] = [];
  const utf8 = new TextDecoder('utf-8');
  const pieceText = (t: number): string => utf8Piece(direct.piece(t, true));

  let text = '';
  let emitted = 0;
  const logprobs: TokenLogprob[] = [];
  let pendingLogprobs: TokenLogprob[] = [];
  // Logprobs of text held back (possible stop-string prefix) travel with the chunk that finally sends it.
  let unsentLogprobs: TokenLogprob[] = [];
  let finishReason: GenerateResult['finishReason'] = 'stop';
  let firstAt: number | undefined;
  const maxStop = req.stop.reduce((m, x) => Math.max(m, x.length), 0);
  let stopped = false;

  try {
    if (req.maxTokens <= 0) finishReason = 'length';
    else {
      for (;;) {
        if (req.signal.aborted) {
          finishReason = 'aborted';
          break;
        }
        let out;
        try {
          out = await run.next();
        } catch (err) {
          if (!req.signal.aborted) throw err;
          finishReason = 'aborted';
          break;
        }
        firstAt ??= performance.now();
        if (req.signal.aborted) {
          finishReason = 'aborted';
          break;
        }
        const token = out.token as Token;
        if (direct.isEog(token)) break;
        generated.push(token);
        if (wantProbs && out.logits) {
          const { logSum, top: ids } = softmaxTop(out.logits, Math.max(1, req.logprobs ?? 0));
          const text1 = pieceText(token);
          const top = ids.slice(0, req.logprobs ?? 0).map((t) => {
            const tt = pieceText(t);
            return { id: t, token: tt, logprob: logprobOf(out.logits![t]!, logSum), bytes: [...direct.piece(t, true)] };
          });
          pendingLogprobs.push({ id: token, token: text1, logprob: logprobOf(out.logits[token]!, logSum), bytes: [...direct.piece(token, true)], top });
        }
        // An incomplete UTF-8 sequence stays in the decoder until the next token completes it.
        const piece = utf8.decode(direct.piece(token, false), { stream: true });
        if (piece.length > 0) {
          const searchFrom = Math.max(0, text.length - maxStop);
          text += piece;
          logprobs.push(...pendingLogprobs);
          unsentLogprobs.push(...pendingLogprobs);
          pendingLogprobs = [];
          if (maxStop > 0) {
            let cut = -1;
            for (const st of req.stop) {
              const i = text.indexOf(st, searchFrom);
              if (i >= 0 && (cut < 0 || i < cut)) cut = i;
            }
            if (cut >= 0) {
              text = text.slice(0, cut);
              stopped = true;
            }
          }
          const safeEnd = stopped ? text.length : text.length - partialStopLength(text, req.stop);
          if (safeEnd > emitted) {
            req.onText?.(text.slice(emitted, safeEnd), unsentLogprobs);
            unsentLogprobs = [];
            emitted = safeEnd;
          }
          if (stopped) break;
        }
        if (generated.length >= req.maxTokens) {
          finishReason = 'length';
          break;
        }
      }
    }
  } finally {
    run.close();
  }
  if (!stopped && finishReason !== 'aborted') {
    text += utf8.decode();
    logprobs.push(...pendingLogprobs);
    unsentLogprobs.push(...pendingLogprobs);
    if (text.length > emitted) req.onText?.(text.slice(emitted), unsentLogprobs);
  }
  if (req.signal.aborted) finishReason = 'aborted';
  const end = performance.now();
  const promptEnd = firstAt ?? end;
  return {
    text,
    tokens: generated,
    finishReason,
    promptTokens: prompt.length,
    cachedTokens,
    logprobs,
    promptSeconds: (promptEnd - t0) / 1000,
    predictSeconds: (end - promptEnd) / 1000,
    firstTokenSeconds: firstAt === undefined ? undefined : (firstAt - t0) / 1000,
  };
}

const pieceDecoder = new TextDecoder('utf-8');
function utf8Piece(bytes: Uint8Array): string {
  return pieceDecoder.decode(bytes);
}
