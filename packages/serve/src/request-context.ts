// What every route shares: the engine, metrics, options, and helpers for the life of one
// generation request (cancellation, timeout, slot, SSE).
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Engine } from './engine.js';
import { ApiError, badRequest, notFound, toApiError } from './errors.js';
import { DEFAULT_SAMPLING, type Sampling } from './generate.js';
import type { Metrics } from './metrics.js';
import type { ChatTemplate } from './template.js';

export interface ServerContext {
  engine: Engine;
  metrics: Metrics;
  template: ChatTemplate;
  timeoutMs: number;
  log: (line: string) => void;
  /** Generations running or queued; aborted when a drain after SIGTERM runs out of time. */
  inflight: Set<AbortController>;
}

export interface CommonBody {
  model?: string;
  stream?: boolean;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  top_k?: number | null;
  min_p?: number | null;
  seed?: number | null;
  stop?: string | string[] | null;
  presence_penalty?: number | null;
  frequency_penalty?: number | null;
  repeat_penalty?: number | null;
  repeat_last_n?: number | null;
  lora?: { id: number; scale: number }[];
  logit_bias?: Record<string, number> | null;
  stream_options?: { include_usage?: boolean } | null;
}

export function checkModel(ctx: ServerContext, model: string | undefined): void {
  if (model !== undefined && model !== ctx.engine.modelId) {
    throw notFound(`The model \`${model}\` does not exist; this server serves \`${ctx.engine.modelId}\` (GET /v1/models lists it).`, 'model_not_found', 'model');
  }
}

export function samplingFrom(ctx: ServerContext, b: CommonBody): Sampling {
  const d = DEFAULT_SAMPLING;
  const vocab = ctx.engine.vocabularySize;
  for (const k of Object.keys(b.logit_bias ?? {})) {
    // llama.cpp indexes the logits with these ids: an id outside the vocabulary must never reach it.
    if (Number(k) >= vocab) throw badRequest(`logit_bias: token id ${k} is outside the vocabulary (0..${vocab - 1}).`, 'logit_bias');
  }
  return {
    temperature: b.temperature ?? d.temperature,
    topK: b.top_k ?? d.topK,
    topP: b.top_p ?? d.topP,
    minP: b.min_p ?? d.minP,
    seed: b.seed ?? undefined,
    presencePenalty: b.presence_penalty ?? d.presencePenalty,
    frequencyPenalty: b.frequency_penalty ?? d.frequencyPenalty,
    repeatPenalty: b.repeat_penalty ?? d.repeatPenalty,
    repeatLastN: b.repeat_last_n ?? d.repeatLastN,
    logitBias: b.logit_bias ? new Map(Object.entries(b.logit_bias).map(([k, v]) => [Number(k), v])) : undefined,
  };
}

export function stopsFrom(stop: CommonBody['stop']): string[] {
  const list = stop == null ? [] : typeof stop === 'string' ? [stop] : stop;
  return list.filter((s) => s.length > 0);
}

/** Room left in the sequence after the prompt; a prompt that leaves none is a 400 as in llama-server. */
export function maxTokensFor(ctx: ServerContext, promptTokens: number, b: CommonBody): number {
  const room = ctx.engine.contextSize - promptTokens;
  if (room <= 0) {
    throw new ApiError(400, `The prompt has ${promptTokens} tokens and the context holds ${ctx.engine.contextSize} per sequence. Shorten the messages, or start the server with a larger --ctx.`, 'exceed_context_size_error', 'context_length_exceeded', 'messages');
  }
  const asked = b.max_completion_tokens ?? b.max_tokens ?? undefined;
  return asked === undefined ? room : Math.min(asked, room);
}

export function scalesFrom(ctx: ServerContext, lora: CommonBody['lora']): number[] {
  for (const l of lora ?? []) {
    if (l.id >= ctx.engine.adapters.length) throw badRequest(`lora: adapter id ${l.id} does not exist; the server has ${ctx.engine.adapters.length} (GET /lora-adapters lists them).`, 'lora');
  }
  return ctx.engine.scalesFor(lora);
}

/** Aborts when the client goes away or the per-request timeout passes. */
export function requestSignal(ctx: ServerContext, reply: FastifyReply): { signal: AbortSignal; reason: () => 'client' | 'timeout' | null; dispose: () => void } {
  const ac = new AbortController();
  let reason: 'client' | 'timeout' | null = null;
  const onClose = (): void => {
    if (!reply.raw.writableFinished && !ac.signal.aborted) {
      reason = 'client';
      ac.abort(new ApiError(499, 'client closed the connection', 'invalid_request_error', 'client_closed'));
    }
  };
  reply.raw.on('close', onClose);
  ctx.inflight.add(ac);
  const timer = setTimeout(() => {
    reason = 'timeout';
    ac.abort(new ApiError(500, `The request took longer than the server's limit of ${ctx.timeoutMs / 1000} s and was stopped. Ask for fewer tokens, or start the server with a larger --timeout.`, 'timeout_error', 'request_timeout'));
  }, ctx.timeoutMs);
  return {
    signal: ac.signal,
    reason: () => reason,
    dispose: () => {
      clearTimeout(timer);
      reply.raw.off('close', onClose);
      ctx.inflight.delete(ac);
    },
  };
}

/** Server-sent events on the raw response, in the shape OpenAI clients read. */
export class SseStream {
  private ended = false;
  constructor(private readonly reply: FastifyReply) {
    reply.hijack();
    reply.raw.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
  }
  get closed(): boolean {
    return this.ended || this.reply.raw.destroyed;
  }
  send(obj: unknown): void {
    if (!this.closed) this.reply.raw.write(`data: ${JSON.stringify(obj)}\n\n`);
  }
  error(err: unknown): void {
    this.send(toApiError(err).body());
  }
  end(): void {
    if (this.closed) return;
    this.reply.raw.write('data: [DONE]\n\n');
    this.ended = true;
    this.reply.raw.end();
  }
}

export function markRecorded(request: FastifyRequest): void {
  (request as FastifyRequest & { qtkRecorded?: boolean }).qtkRecorded = true;
}

export function isRecorded(request: FastifyRequest): boolean {
  return (request as FastifyRequest & { qtkRecorded?: boolean }).qtkRecorded === true;
}

export function newId(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}${Math.random().toString(36).slice(2, 10)}`;
}
