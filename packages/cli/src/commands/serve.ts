import { intArg, portArg, secondsArg, sizeArg, stringArg } from '@qtk/core';
import type { QtkCommand } from '../command.js';

export const serveCommand: QtkCommand = {
  command: 'serve <model>',
  describe: 'Serve a GGUF model over an OpenAI-compatible HTTP API (chat, completions, tools, LoRA adapters)',
  builder: (y) =>
    y
      .positional('model', { type: 'string', describe: 'a .gguf model file', demandOption: true })
      .option('lora', { type: 'string', array: true, describe: 'a GGUF LoRA adapter, optionally with a scale: adapter.gguf[:scale] (repeatable)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind; 0.0.0.0 exposes the server to the network' })
      .option('port', { type: 'string', default: 8080, describe: 'TCP port, 1–65535 (0 picks a free one)' })
      .option('parallel', { type: 'string', default: 1, describe: 'requests generated at once' })
      .option('queue', { type: 'string', describe: 'requests that may wait for a free slot before 429 (default 4 × parallel)' })
      .option('ctx', { type: 'string', describe: 'context size per request in tokens (default min(4096, the model\'s))' })
      .option('api-key', { type: 'string', describe: 'require `Authorization: Bearer KEY` (or set QTK_API_KEY); /health stays open' })
      .option('threads', { type: 'string', describe: 'CPU threads for generation' })
      .option('gpu', { type: 'boolean', default: true, describe: 'use a GPU when one is found (--no-gpu forces CPU)' })
      .option('timeout', { type: 'string', default: 600, describe: 'seconds one request may take, queueing included' })
      .option('body-limit', { type: 'string', default: 2 * 1024 * 1024, describe: 'largest request body: bytes, or with a unit (2MiB) (413 above)' })
      .option('alias', { type: 'string', describe: 'model id clients send (default: the file name without .gguf)' }),
  run: async (args) => {
    const port = portArg('port', args.port, { allowZero: true });
    const parallel = intArg('parallel', args.parallel, { min: 1, max: 256 });
    const queue = intArg('queue', args.queue, { min: 0, example: 8 });
    const ctx = intArg('ctx', args.ctx, { min: 16, example: 4096 });
    const threads = intArg('threads', args.threads, { min: 1, max: 1024 });
    const timeoutS = secondsArg('timeout', args.timeout);
    const bodyLimit = sizeArg('body-limit', args.bodyLimit, { min: 1024 });
    const { serveMain } = await import('@qtk/serve');
    await serveMain({
      model: String(args.model),
      lora: (args.lora as string[] | undefined)?.map(String),
      host: String(args.host),
      port,
      parallel,
      queue,
      ctx,
      apiKey: stringArg('api-key', args.apiKey),
      threads,
      gpu: args.gpu === false ? false : 'auto',
      timeoutS,
      bodyLimit,
      alias: stringArg('alias', args.alias),
    });
  },
};
