// POST /v1/completions: a raw prompt (text or token ids), no chat template.
import type { FastifyInstance } from 'fastify';
import type { Token } from 'node-llama-cpp';
import { badRequest, toApiError } from '../errors.js';
import { runGeneration } from '../flow.js';
import type { TokenLogprob } from '../generate.js';
import { responseFormatGrammar, type ResponseFormat } from '../grammar.js';
import { checkModel, markRecorded, maxTokensFor, newId, samplingFrom, scalesFrom, SseStream, stopsFrom, type CommonBody, type ServerContext } from '../request-context.js';
import { completionBodySchema } from '../schemas.js';
import { usage } from './chat.js';

interface CompletionBody extends CommonBody {
  prompt: string | string[] | number[] | number[][];
  logprobs?: number | null;
  echo?: boolean;
  response_format?: ResponseFormat;
}

function promptTokens(ctx: ServerContext, prompt: CompletionBody['prompt']): Token[] {
  let p: string | number[] = prompt as string | number[];
  if (Array.isArray(prompt) && prompt.length > 0 && (typeof prompt[0] === 'string' || Array.isArray(prompt[0]))) {
    if (prompt.length !== 1) throw badRequest(`prompt: ${prompt.length} prompts in one request; this server answers one prompt per request.`, 'prompt');
    p = prompt[0] as string | number[];
  }
  const model = ctx.engine.model;
  if (typeof p === 'string') {
    const tokens = model.tokenize(p, true);
    if (model.tokens.bos !== null && model.tokens.shouldPrependBosToken && tokens[0] !== model.tokens.bos) tokens.unshift(model.tokens.bos);
    if (tokens.length === 0) throw badRequest('prompt is empty.', 'prompt');
    return tokens;
  }
  const vocab = ctx.engine.vocabularySize;
  for (const t of p) if (!Number.isInteger(t) || t < 0 || t >= vocab) throw badRequest(`prompt: token id ${t} is outside the vocabulary (0..${vocab - 1}).`, 'prompt');
  if (p.length === 0) throw badRequest('prompt is empty.', 'prompt');
  return p as Token[];
}

function completionLogprobs(lps: TokenLogprob[]): Record<string, unknown> {
  let offset = 0;
  const textOffset: number[] = [];
  for (const l of lps) {
    textOffset.push(offset);
    offset += l.token.length;
  }
  return {
    tokens: lps.map((l) => l.token),
    token_logprobs: lps.map((l) => l.logprob),
    top_logprobs: lps.map((l) => Object.fromEntries(l.top.map((t) => [t.token, t.logprob]))),
    text_offset: textOffset,
  };
}

export function registerCompletions(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/completions', { schema: { body: completionBodySchema } }, async (request, reply) => {
    const body = request.body as CompletionBody;
    checkModel(ctx, body.model);
    const prompt = promptTokens(ctx, body.prompt);
    const maxTokens = maxTokensFor(ctx, prompt.length, { max_tokens: body.max_tokens ?? 16 }) // OpenAI's default for legacy completions;
    const spec = {
      prompt,
      scales: scalesFrom(ctx, body.lora),
      maxTokens,
      sampling: samplingFrom(ctx, body),
      stop: stopsFrom(body.stop),
      grammar: await responseFormatGrammar(ctx.engine.llama, body.response_format),
      logprobs: body.logprobs ?? undefined,
    };
    const id = newId('cmpl');
    const created = Math.floor(Date.now() / 1000);
    const base = { id, object: 'text_completion', created, model: ctx.engine.modelId, system_fingerprint: 'qtk' };
    const echo = body.echo === true && typeof body.prompt === 'string' ? body.prompt : '';

    if (body.stream) {
      let sse: SseStream | null = null;
      let status = 200;
      const send = (text: string, finish: string | null, lps?: TokenLogprob[]): void =>
        sse?.send({ ...base, choices: [{ index: 0, text, logprobs: lps && body.logprobs != null ? completionLogprobs(lps) : null, finish_reason: finish }] });
      try {
        const result = await runGeneration(ctx, reply, {
          ...spec,
          onStart: () => {
            sse = new SseStream(reply);
            if (echo) send(echo, null);
          },
          onText: (delta, lps) => send(delta, null, lps),
        });
        send('', result.finishReason);
        if (body.stream_options?.include_usage) sse!.send({ ...base, choices: [], usage: usage(result) });
        sse!.end();
      } catch (err) {
        status = toApiError(err).status;
        if (!sse) throw err;
        (sse as SseStream).error(err);
        (sse as SseStream).end();
      } finally {
        if (sse) {
          markRecorded(request);
          ctx.metrics.request('/v1/completions', status, reply.elapsedTime / 1000);
        }
      }
      return reply;
    }

    const result = await runGeneration(ctx, reply, spec);
    return {
      ...base,
      choices: [{ index: 0, text: echo + result.text, logprobs: body.logprobs != null ? completionLogprobs(result.logprobs) : null, finish_reason: result.finishReason }],
      usage: usage(result),
    };
  });
}
