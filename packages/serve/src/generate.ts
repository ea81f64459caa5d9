// The token loop on one sequence: reuse the cached prompt prefix, sample with the request's
// settings, stop on EOG / stop strings / max tokens / abort, and stream text that can no longer
// turn out to be part of a stop string.
import { LlamaGrammarEvaluationState, TokenBias, type LlamaContextSequence, type LlamaGrammar, type LlamaModel, type Token } from 'node-llama-cpp';

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
  /** Tokens this sequence has sent to llama_decode so far (a counter): gives the prompt tokens truly reused,
   *  since on recurrent models a shortened history is re-evaluated from the start. */
  evaluatedTokens?: () => number;
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

function tokenText(model: LlamaModel, t: Token): string {
  return model.detokenize([t], true);
}

function logprobOf(p: number): number {
  return p > 0 ? Math.log(p) : -9999;
}

export async function generate(model: LlamaModel, seq: LlamaContextSequence, req: GenerateRequest): Promise<GenerateResult> {
  const t0 = performance.now();
  const { prompt } = req;
  const evaluatedAtStart = req.evaluatedTokens?.();
  // Keep the common prefix in the KV cache; always evaluate at least the last prompt token.
  await seq.adaptStateToTokens(prompt, false);
  if (seq.nextTokenIndex >= prompt.length) await seq.eraseContextTokenRanges([{ start: prompt.length - 1, end: seq.nextTokenIndex }]);
  let cachedTokens = seq.nextTokenIndex;
  const s = req.sampling;
  const penalize = s.presencePenalty !== 0 || s.frequencyPenalty !== 0 || s.repeatPenalty !== 1;
  const generated: Token[] = [];
  const repeatPenalty = penalize
    ? {
        punishTokens: () => [...prompt, ...generated].slice(-s.repeatLastN),
        maxPunishTokens: s.repeatLastN,
        penalty: s.repeatPenalty,
        presencePenalty: s.presencePenalty,
        frequencyPenalty: s.frequencyPenalty,
      }
    : undefined;
  const grammarEvaluationState = req.grammar ? new LlamaGrammarEvaluationState({ model, grammar: req.grammar }) : undefined;
  let tokenBias: TokenBias | undefined;
  if (s.logitBias && s.logitBias.size > 0) {
    tokenBias = new TokenBias(model.tokenizer);
    for (const [t, b] of s.logitBias) tokenBias.set(t as Token, b <= -100 ? 'never' : { logit: b });
  }
  const wantProbs = req.logprobs !== undefined;
  const iterator = seq.evaluateWithMetadata(prompt.slice(cachedTokens), { probabilities: wantProbs }, {
    temperature: s.temperature,
    topK: s.topK,
    topP: s.topP,
    minP: s.minP,
    seed: s.seed,
    repeatPenalty,
    grammarEvaluationState,
    tokenBias,
  });

  let text = '';
  let emitted = 0;
  let pending: Token[] = [];
  const logprobs: TokenLogprob[] = [];
  let pendingLogprobs: TokenLogprob[] = [];
  // Logprobs of text held back (possible stop-string prefix) travel with the chunk that finally sends it.
  let unsentLogprobs: TokenLogprob[] = [];
  let finishReason: GenerateResult['finishReason'] = 'stop';
  let firstAt: number | undefined;
  const maxStop = req.stop.reduce((m, x) => Math.max(m, x.length), 0);
  let stopped = false;

  if (req.maxTokens <= 0) finishReason = 'length';
  else {
    for await (const out of iterator) {
      if (req.signal.aborted) {
        finishReason = 'aborted';
        break;
      }
      if (firstAt === undefined) {
        firstAt = performance.now();
        if (evaluatedAtStart !== undefined) cachedTokens = Math.max(0, prompt.length - (req.evaluatedTokens!() - evaluatedAtStart));
        // The state now ends at the prompt: a follow-up turn that shares the prompt restarts from here.
        if (seq.needsCheckpoints) await seq.takeCheckpoint();
      }
      const token = out.token as Token;
      generated.push(token);
      if (wantProbs) {
        const probs = (out as { probabilities?: Map<Token, number> }).probabilities ?? new Map<Token, number>();
        const text1 = tokenText(model, token);
        const top: TokenLogprob['top'] = [];
        for (const [t, p] of probs) {
          if (top.length >= (req.logprobs ?? 0)) break;
          const tt = tokenText(model, t);
          top.push({ id: t, token: tt, logprob: logprobOf(p), bytes: [...Buffer.from(tt, 'utf8')] });
        }
        pendingLogprobs.push({ id: token, token: text1, logprob: logprobOf(probs.get(token) ?? 0), bytes: [...Buffer.from(text1, 'utf8')], top });
      }
      pending.push(token);
      const piece = model.detokenize(pending, false, generated.slice(Math.max(0, generated.length - pending.length - 8), generated.length - pending.length));
      // An incomplete UTF-8 sequence shows as U+FFFD: wait for the next token.
      if (!piece.endsWith('\uFFFD') || pending.length >= 4) {
        const searchFrom = Math.max(0, text.length - maxStop);
        text += piece;
        pending = [];
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
  if (!stopped && finishReason !== 'aborted') {
    if (pending.length > 0) text += model.detokenize(pending, false, generated.slice(0, generated.length - pending.length).slice(-8));
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
