// One generation request from queue to result: take a sequence (or 429), generate, record metrics,
// and turn a timeout or a vanished client into the right outcome. The slot is always given back.
import type { FastifyReply } from 'fastify';
import type { LlamaGrammar, Token } from 'node-llama-cpp';
import { generate, type GenerateResult, type Sampling, type TokenLogprob } from './generate.js';
import { requestSignal, type ServerContext } from './request-context.js';

export interface GenerationSpec {
  prompt: Token[];
  scales: number[];
  maxTokens: number;
  sampling: Sampling;
  stop: string[];
  grammar?: LlamaGrammar;
  logprobs?: number;
  onText?: (delta: string, logprobs: TokenLogprob[]) => void;
  /** Called once a sequence is assigned, before the first token (streams send their first chunk here). */
  onStart?: () => void;
}

export async function runGeneration(ctx: ServerContext, reply: FastifyReply, spec: GenerationSpec): Promise<GenerateResult> {
  const { engine, metrics } = ctx;
  const sig = requestSignal(ctx, reply);
  let slot: { index: number } | undefined;
  try {
    slot = await engine.pool.acquire(spec.scales, sig.signal, (i) => engine.sharedPrefix(i, spec.prompt));
    spec.onStart?.();
    const result = await generate(engine.decoder(slot), { ...spec, signal: sig.signal });
    metrics.generation({
      promptTokens: result.promptTokens,
      cachedTokens: result.cachedTokens,
      predicted: result.tokens.length,
      promptSeconds: result.promptSeconds,
      predictSeconds: result.predictSeconds,
      ttftSeconds: result.firstTokenSeconds,
    });
    if (result.finishReason === 'aborted') throw sig.signal.reason;
    return result;
  } catch (err) {
    if (sig.signal.aborted) {
      if (sig.reason() === 'timeout') metrics.timeouts++;
      else metrics.cancelled++;
      throw sig.signal.reason;
    }
    throw err;
  } finally {
    if (slot) engine.pool.release(slot);
    sig.dispose();
  }
}
