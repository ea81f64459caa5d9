// GET /v1/models, /health, /metrics, and GET/POST /lora-adapters (llama-server's shapes).
import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../errors.js';
import type { ServerContext } from '../request-context.js';
import { loraPostSchema } from '../schemas.js';

export function registerAdmin(app: FastifyInstance, ctx: ServerContext, started: number): void {
  const { engine } = ctx;
  const modelCard = () => ({ id: engine.modelId, object: 'model', created: Math.floor(started / 1000), owned_by: 'qtk', meta: { n_ctx: engine.contextSize, n_parallel: engine.pool.size } });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get('/models', async () => ({ object: 'list', data: [modelCard()] }));
  app.get('/v1/models/:id', async (request) => {
    const { id } = request.params as { id: string };
    if (id !== engine.modelId) throw notFound(`The model \`${id}\` does not exist; this server serves \`${engine.modelId}\`.`, 'model_not_found', 'model');
    return modelCard();
  });

  const health = async () => ({ status: 'ok', slots_idle: engine.pool.idle, slots_processing: engine.pool.processing, requests_deferred: engine.pool.deferred });
  app.get('/health', health);
  app.get('/v1/health', health);

  app.get('/metrics', async (_request, reply) => {
    reply.header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8');
    return ctx.metrics.render();
  });

  const listAdapters = () => engine.adapters.map((a) => ({ id: a.id, path: a.path, scale: a.scale }));
  app.get('/lora-adapters', async () => listAdapters());
  app.post('/lora-adapters', { schema: { body: loraPostSchema } }, async (request) => {
    const body = request.body as { id: number; scale: number }[];
    for (const l of body) {
      if (l.id >= engine.adapters.length) throw badRequest(`Adapter id ${l.id} does not exist; the server has ${engine.adapters.length} (GET /lora-adapters lists them).`, 'id');
    }
    // As in llama-server, adapters missing from the list are set to 0; requests already running keep their scales.
    const scales = engine.scalesFor(body);
    engine.adapters.forEach((a, i) => (a.scale = scales[i]!));
    return { success: true };
  });
}
