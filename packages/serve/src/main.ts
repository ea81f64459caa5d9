// serveMain: `qtk serve` — start the server, print where it listens, drain on SIGTERM/SIGINT.
import { parseLoraArg, type ServeOptions } from './options.js';
import { startServer } from './server.js';

export interface ServeMainArgs extends Omit<ServeOptions, 'lora'> {
  /** `path` or `path:scale`, as given to --lora. */
  lora?: string[];
}

export async function serveMain(args: ServeMainArgs): Promise<void> {
  const log = args.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const handle = await startServer({ ...args, lora: (args.lora ?? []).map(parseLoraArg), log });
  const { engine } = handle;
  log(`qtk serve: ${engine.modelId} on ${handle.url} (ctx ${engine.contextSize} per sequence, ${engine.pool.size} parallel, queue ${engine.pool.queueLimit}${engine.adapters.length ? `, ${engine.adapters.length} LoRA adapter(s)` : ''})`);
  await new Promise<void>((resolve) => {
    const stop = (signal: string): void => {
      log(`qtk serve: ${signal}: finishing ${engine.pool.processing + engine.pool.deferred} request(s), then exiting`);
      handle.close().then(resolve, (err) => {
        log(`qtk serve: shutdown failed: ${(err as Error).message}`);
        process.exitCode = 1;
        resolve();
      });
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  log('qtk serve: stopped');
}
