// Server options and the `--lora path[:scale]` syntax shared by the library and the CLI.
import { QtkError } from '@qtk/core';

export interface LoraSpec {
  path: string;
  /** llama-server's default scale is 1. */
  scale: number;
}

export interface ServeOptions {
  /** A GGUF model file. */
  model: string;
  lora?: LoraSpec[];
  /** Defaults to 127.0.0.1: the server is reachable from this machine only unless told otherwise. */
  host?: string;
  /** 0 picks a free port (tests). Defaults to 8080. */
  port?: number;
  /** Sequences generated at once (llama-server's --parallel). Defaults to 1. */
  parallel?: number;
  /** Requests that may wait for a free sequence; one more is answered 429. Defaults to 4 × parallel. */
  queue?: number;
  /** Context size per sequence in tokens. Defaults to min(4096, the model's training context). */
  ctx?: number;
  /** Bearer key required on every endpoint except /health. Falls back to QTK_API_KEY. */
  apiKey?: string;
  threads?: number;
  /** 'auto' uses a GPU when node-llama-cpp finds one. */
  gpu?: 'auto' | false;
  /** Limit for one request, queueing included, in seconds. Defaults to 600. */
  timeoutS?: number;
  /** Largest accepted request body in bytes. Defaults to 2 MiB. */
  bodyLimit?: number;
  /** The model id clients send; defaults to the file name without `.gguf`. */
  alias?: string;
  /** After SIGTERM, how long in-flight requests may still run, in seconds. Defaults to 30. */
  drainS?: number;
  /** Log lines (startup, errors); defaults to stderr. */
  log?: (line: string) => void;
}

/** Parses `adapter.gguf` or `adapter.gguf:0.5`; the scale is split at the last colon only when it is a number. */
export function parseLoraArg(arg: string): LoraSpec {
  const colon = arg.lastIndexOf(':');
  if (colon > 0) {
    const tail = arg.slice(colon + 1);
    if (/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(tail)) return { path: arg.slice(0, colon), scale: Number(tail) };
  }
  if (arg.length === 0) throw new QtkError('--lora needs a path: use --lora adapter.gguf or --lora adapter.gguf:0.5.');
  return { path: arg, scale: 1 };
}
