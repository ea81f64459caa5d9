import type { QtkCommand } from '../command.js';

export const serveCommand: QtkCommand = {
  command: 'serve <model>',
  describe: 'Serve a GGUF model over an OpenAI-compatible HTTP API (chat, completions, tools, LoRA adapters)',
  builder: (y) =>
    y
      .positional('model', { type: 'string', describe: 'a .gguf model file', demandOption: true })
      .option('lora', { type: 'string', array: true, describe: 'a GGUF LoRA adapter, optionally with a scale: adapter.gguf[:scale] (repeatable)' })
      .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to bind; 0.0.0.0 exposes the server to the network' })
      .option('port', { type: 'number', default: 8080 })
      .option('parallel', { type: 'number', default: 1, describe: 'requests generated at once' })
      .option('queue', { type: 'number', describe: 'requests that may wait for a free slot before 429 (default 4 × parallel)' })
      .option('ctx', { type: 'number', describe: 'context size per request in tokens (default min(4096, the model\'s))' })
      .option('api-key', { type: 'string', describe: 'require `Authorization: Bearer KEY` (or set QTK_API_KEY); /health stays open' })
      .option('threads', { type: 'number', describe: 'CPU threads for generation' })
      .option('gpu', { type: 'boolean', default: true, describe: 'use a GPU when one is found (--no-gpu forces CPU)' })
      .option('timeout', { type: 'number', default: 600, describe: 'seconds one request may take, queueing included' })
      .option('body-limit', { type: 'number', default: 2 * 1024 * 1024, describe: 'largest request body in bytes (413 above)' })
      .option('alias', { type: 'string', describe: 'model id clients send (default: the file name without .gguf)' }),
  run: async (args) => {
    const { serveMain } = await import('@qtk/serve');
    const num = (v: unknown): number | undefined => (v === undefined ? undefined : Number(v));
    await serveMain({
      model: String(args.model),
      lora: (args.lora as string[] | undefined)?.map(String),
      host: String(args.host),
      port: Number(args.port),
      parallel: Number(args.parallel),
      queue: num(args.queue),
      ctx: num(args.ctx),
      apiKey: args.apiKey === undefined ? undefined : String(args.apiKey),
      threads: num(args.threads),
      gpu: args.gpu === false ? false : 'auto',
      timeoutS: Number(args.timeout),
      bodyLimit: Number(args.bodyLimit),
      alias: args.alias === undefined ? undefined : String(args.alias),
    });
  },
};
