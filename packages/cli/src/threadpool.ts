// koffi's async calls (the ggml quantizer) run on libuv's thread pool, which has 4 threads unless
// UV_THREADPOOL_SIZE is set before its first use: size it to the machine so --threads can use every core.
import { availableParallelism } from 'node:os';

if (!process.env.UV_THREADPOOL_SIZE) {
  process.env.UV_THREADPOOL_SIZE = String(Math.min(128, Math.max(4, availableParallelism())));
}
