// startServer: load the model, wire the routes, listen. close() drains: no new requests, the
// running and queued ones finish (or are stopped after drainS), then the model is released.
import Fastify, { type FastifyInstance } from 'fastify';
import { PUBLIC_PATHS, makeKeyCheck } from './auth.js';
import { Engine } from './engine.js';
import { ApiError, notFound, toApiError } from './errors.js';
import { checkAddress, hostPort, listenError } from './listen.js';
import { Metrics } from './metrics.js';
import type { ServeOptions } from './options.js';
import { isRecorded, type ServerContext } from './request-context.js';
import { registerAdmin } from './routes/admin.js';
import { registerChat } from './routes/chat.js';
import { registerCompletions } from './routes/completions.js';
import { loadChatTemplate } from './template.js';

export interface ServerHandle {
  /** e.g. http://127.0.0.1:8080 */
  url: string;
  modelId: string;
  engine: Engine;
  app: FastifyInstance;
  /** Stops taking requests, lets in-flight ones finish, releases the model. Safe to call twice. */
  close(): Promise<void>;
}

export async function startServer(opts: ServeOptions): Promise<ServerHandle> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const host = opts.host ?? '127.0.0.1';
  const wantPort = opts.port ?? 8080;
  await checkAddress(host, wantPort);
  const engine = await Engine.load(opts);
  const pool = engine.pool;
  const metrics = new Metrics(() => ({ processing: pool.processing, deferred: pool.deferred, slotsIdle: pool.idle, slotsTotal: pool.size }), () => engine.batching.stats);
  const template = loadChatTemplate(engine.chatTemplate, { bos: engine.model.tokens.bosString, eos: engine.model.tokens.eosString });
  const ctx: ServerContext = { engine, metrics, template, timeoutMs: (opts.timeoutS ?? 600) * 1000, log, inflight: new Set() };
  const apiKey = opts.apiKey ?? process.env.QTK_API_KEY;
  const keyOk = apiKey ? makeKeyCheck(apiKey) : null;

  const app = Fastify({
    bodyLimit: opts.bodyLimit ?? 2 * 1024 * 1024,
    logger: false,
    // OpenAI bodies are validated as sent: no type coercion, no silent field removal.
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });

  app.addHook('onRequest', async (request) => {
    if (keyOk && !PUBLIC_PATHS.has(request.url.split('?')[0]!) && !keyOk(request.headers.authorization)) {
      throw new ApiError(401, 'Invalid API key. Send it as `Authorization: Bearer <key>` (the key given to --api-key or QTK_API_KEY).', 'authentication_error', 'invalid_api_key');
    }
  });
  app.addHook('onResponse', async (request, reply) => {
    if (!isRecorded(request)) metrics.request(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.setErrorHandler(async (err, request, reply) => {
    const e = toApiError(err);
    if (e.status >= 500 && !(err instanceof ApiError)) log(`qtk serve: ${request.method} ${request.url} failed: ${(err as Error)?.stack ?? String(err)}`);
    // A vanished client gets nothing written; the status still reaches the metrics (499, as nginx logs it).
    return reply.code(e.status).headers(e.headers).send(e.body());
  });
  app.setNotFoundHandler(async (request, reply) => {
    const e = notFound(`No endpoint ${request.method} ${request.url.split('?')[0]}. Endpoints: /v1/chat/completions, /v1/completions, /v1/models, /health, /metrics, /lora-adapters.`, 'unknown_endpoint');
    return reply.code(404).send(e.body());
  });

  const started = Date.now();
  registerAdmin(app, ctx, started);
  registerChat(app, ctx);
  registerCompletions(app, ctx);

  try {
    await app.listen({ host, port: wantPort });
  } catch (err) {
    await engine.dispose();
    throw listenError(err, host, wantPort);
  }
  const addr = app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : wantPort;
  const url = `http://${hostPort(host, port)}`;

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> =>
    (closing ??= (async () => {
      pool.draining = true;
      const drainMs = (opts.drainS ?? 30) * 1000;
      const timer = setTimeout(() => {
        for (const ac of ctx.inflight) ac.abort(new ApiError(503, 'The server is shutting down.', 'server_error', 'shutting_down'));
      }, drainMs);
      try {
        await app.close();
        await pool.idleNow();
      } finally {
        clearTimeout(timer);
        await engine.dispose();
      }
    })());

  return { url, modelId: engine.modelId, engine, app, close };
}
