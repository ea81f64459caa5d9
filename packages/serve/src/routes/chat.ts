// POST /v1/chat/completions: messages through the model's chat template, answers split into
// reasoning_content / content / tool_calls, streamed as SSE chunks or returned whole.
import type { FastifyInstance } from 'fastify';
import { ChatOutputParser } from '../chat-output.js';
import { badRequest, toApiError } from '../errors.js';
import { runGeneration } from '../flow.js';
import type { TokenLogprob } from '../generate.js';
import { forcedTools, responseFormatGrammar, toolCallGrammar, type ResponseFormat, type ToolChoice, type ToolDef } from '../grammar.js';
import { checkModel, markRecorded, maxTokensFor, newId, samplingFrom, scalesFrom, SseStream, stopsFrom, type CommonBody, type ServerContext } from '../request-context.js';
import { chatBodySchema } from '../schemas.js';
import { endsInsideThinking } from '../template.js';

interface ChatMessage {
  role: 'system' | 'developer' | 'user' | 'assistant' | 'tool';
  content?: string | { type: string; text?: string }[] | null;
  name?: string;
  tool_calls?: { id?: string; type?: string; function: { name: string; arguments: string | Record<string, unknown> } }[];
  tool_call_id?: string;
  reasoning_content?: string;
}

interface ChatBody extends CommonBody {
  messages: ChatMessage[];
  tools?: ToolDef[];
  tool_choice?: ToolChoice;
  parallel_tool_calls?: boolean;
  response_format?: ResponseFormat;
  logprobs?: boolean | null;
  top_logprobs?: number | null;
  chat_template_kwargs?: Record<string, unknown>;
  reasoning_format?: 'none' | 'deepseek' | 'auto';
}

function textOf(content: ChatMessage['content'], i: number): string {
  if (content == null) return '';
  if (typeof content === 'string') return content;
  return content
    .map((p) => {
      if (p.type !== 'text' || typeof p.text !== 'string') throw badRequest(`messages[${i}].content: only text parts are supported (got "${p.type}").`, `messages[${i}].content`);
      return p.text;
    })
    .join('');
}

/** OpenAI messages → the variables chat templates read (arguments as objects, as llama-server passes them). */
function templateMessages(messages: ChatMessage[]): unknown[] {
  return messages.map((m, i) => {
    const out: Record<string, unknown> = { role: m.role === 'developer' ? 'system' : m.role, content: textOf(m.content, i) };
    if (m.name) out.name = m.name;
    if (m.tool_call_id) out.tool_call_id = m.tool_call_id;
    if (typeof m.reasoning_content === 'string') out.reasoning_content = m.reasoning_content;
    if (m.tool_calls) {
      out.tool_calls = m.tool_calls.map((c) => {
        let args: unknown = c.function.arguments;
        if (typeof args === 'string') {
          try {
            args = JSON.parse(args);
          } catch {
            throw badRequest(`messages[${i}].tool_calls: arguments of "${c.function.name}" are not valid JSON.`, `messages[${i}].tool_calls`);
          }
        }
        return { id: c.id, type: 'function', function: { name: c.function.name, arguments: args }, name: c.function.name, arguments: args };
      });
    }
    return out;
  });
}

function chatLogprobs(lps: TokenLogprob[]): { content: unknown[] } {
  return { content: lps.map((l) => ({ id: l.id, token: l.token, logprob: l.logprob, bytes: l.bytes, top_logprobs: l.top })) };
}

export function registerChat(app: FastifyInstance, ctx: ServerContext): void {
  app.post('/v1/chat/completions', { schema: { body: chatBodySchema } }, async (request, reply) => {
    const body = request.body as ChatBody;
    checkModel(ctx, body.model);
    const { engine, template } = ctx;
    const tools = body.tool_choice === 'none' ? undefined : body.tools;
    const forced = forcedTools(tools, body.tool_choice);
    if (forced && body.response_format && body.response_format.type !== 'text') throw badRequest('Use either a forced tool_choice or response_format, not both.', 'response_format');
    const kwargs: Record<string, unknown> = { ...(body.chat_template_kwargs ?? {}) };
    // A grammar applies from the first token, so it cannot leave room for a thinking block.
    const constrained = forced !== null || (body.response_format !== undefined && body.response_format.type !== 'text');
    if (constrained && kwargs.enable_thinking === undefined && template.supportsThinking) kwargs.enable_thinking = false;
    const prompt = template.render({ messages: templateMessages(body.messages), tools, kwargs });
    const grammar = forced ? await toolCallGrammar(engine.llama, forced, template.toolFormat) : await responseFormatGrammar(engine.llama, body.response_format);
    const promptTokens = engine.model.tokenize(prompt, true);
    const bos = engine.model.tokens.bos;
    if (bos !== null && engine.model.tokens.shouldPrependBosToken && promptTokens[0] !== bos) promptTokens.unshift(bos);
    const maxTokens = maxTokensFor(ctx, promptTokens.length, body);
    const scales = scalesFrom(ctx, body.lora);
    const wantLogprobs = body.logprobs === true;
    const parser = new ChatOutputParser({
      thinkingOpen: endsInsideThinking(prompt),
      toolFormat: template.toolFormat,
      parseTools: (tools?.length ?? 0) > 0,
      parseReasoning: body.reasoning_format !== 'none',
      tools,
    });
    const id = newId('chatcmpl');
    const created = Math.floor(Date.now() / 1000);
    const base = { id, created, model: engine.modelId, system_fingerprint: 'qtk' };
    const spec = {
      prompt: promptTokens,
      scales,
      maxTokens,
      sampling: samplingFrom(ctx, body),
      stop: stopsFrom(body.stop),
      grammar,
      logprobs: wantLogprobs ? (body.top_logprobs ?? 0) : undefined,
    };

    if (body.stream) {
      let sse: SseStream | null = null;
      const chunk = (delta: Record<string, unknown>, finish: string | null, logprobs?: unknown): void =>
        sse?.send({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs: logprobs ?? null, finish_reason: finish }] });
      let status = 200;
      try {
        const result = await runGeneration(ctx, reply, {
          ...spec,
          onStart: () => {
            sse = new SseStream(reply);
            chunk({ role: 'assistant', content: null }, null);
          },
          onText: (delta, lps) => {
            const d = parser.push(delta);
            const lp = wantLogprobs && lps.length > 0 ? chatLogprobs(lps) : undefined;
            if (d.reasoning) chunk({ reasoning_content: d.reasoning }, null, lp);
            if (d.content) chunk({ content: d.content }, null, d.reasoning ? undefined : lp);
          },
        });
        const last = parser.finish();
        if (last.reasoning) chunk({ reasoning_content: last.reasoning }, null);
        if (last.content) chunk({ content: last.content }, null);
        if (last.toolCalls.length > 0) {
          chunk({ tool_calls: last.toolCalls.map((c, index) => ({ index, id: newId('call'), type: 'function', function: { name: c.name, arguments: c.arguments } })) }, null);
        }
        chunk({}, finishReason(result.finishReason, last.toolCalls.length));
        if (body.stream_options?.include_usage) {
          sse!.send({ ...base, object: 'chat.completion.chunk', choices: [], usage: usage(result) });
        }
        sse!.end();
      } catch (err) {
        const e = toApiError(err);
        status = e.status;
        if (!sse) throw err; // nothing sent yet: an ordinary error response (429, 400, timeout in queue)
        (sse as SseStream).error(err);
        (sse as SseStream).end();
      } finally {
        if (sse) {
          markRecorded(request);
          ctx.metrics.request('/v1/chat/completions', status === 200 && reply.raw.destroyed && !reply.raw.writableFinished ? 499 : status, reply.elapsedTime / 1000);
        }
      }
      return reply;
    }

    const result = await runGeneration(ctx, reply, spec);
    parser.push(result.text);
    const { toolCalls } = parser.finish();
    const { content, reasoning } = parser; // totals over the whole answer
    const message: Record<string, unknown> = { role: 'assistant', content: toolCalls.length > 0 && content.trim() === '' ? null : content };
    if (reasoning) message.reasoning_content = reasoning;
    if (toolCalls.length > 0) message.tool_calls = toolCalls.map((c) => ({ id: newId('call'), type: 'function', function: { name: c.name, arguments: c.arguments } }));
    return {
      ...base,
      object: 'chat.completion',
      choices: [{ index: 0, message, logprobs: wantLogprobs ? chatLogprobs(result.logprobs) : null, finish_reason: finishReason(result.finishReason, toolCalls.length) }],
      usage: usage(result),
    };
  });
}

/** A call cut off by max_tokens is reported as 'length', as OpenAI does for truncated answers. */
function finishReason(reason: string, toolCalls: number): string {
  return reason === 'length' || toolCalls === 0 ? reason : 'tool_calls';
}

export function usage(r: { promptTokens: number; tokens: unknown[]; cachedTokens: number }): Record<string, unknown> {
  return {
    prompt_tokens: r.promptTokens,
    completion_tokens: r.tokens.length,
    total_tokens: r.promptTokens + r.tokens.length,
    prompt_tokens_details: { cached_tokens: r.cachedTokens },
  };
}
