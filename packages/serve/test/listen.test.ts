// A taken or forbidden address fails before the model loads, as a QtkError that names host:port
// and says what to do (the model path here does not exist: reaching the model load would say so).
import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QtkError } from '@qtk/core';
import { startServer } from '../src/index.js';
import { listenError } from '../src/listen.js';

let blocker: Server;
let port: number;

beforeAll(async () => {
  blocker = createServer();
  await new Promise<void>((resolve) => blocker.listen({ host: '127.0.0.1', port: 0 }, resolve));
  port = (blocker.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((resolve) => blocker.close(() => resolve()));
});

describe('startServer address checks', () => {
  it('refuses a port in use before loading the model, naming host:port and the way out', async () => {
    const err = await startServer({ model: '/nonexistent/model.gguf', host: '127.0.0.1', port, gpu: false, log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    const msg = (err as Error).message;
    expect(msg).toContain(`127.0.0.1:${port}`);
    expect(msg).toMatch(/already in use/);
    expect(msg).toMatch(/another --port/);
    expect(msg).not.toMatch(/model file not found/);
  });

  it('refuses a port outside 0..65535', async () => {
    const err = await startServer({ model: '/nonexistent/model.gguf', port: 70000, gpu: false, log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as Error).message).toMatch(/--port 70000: expected an integer from 0 to 65535/);
  });

  it('translates EACCES and leaves unrelated errors alone', () => {
    const eacces = Object.assign(new Error('listen EACCES: permission denied 0.0.0.0:80'), { code: 'EACCES' });
    const e = listenError(eacces, '0.0.0.0', 80);
    expect(e).toBeInstanceOf(QtkError);
    expect((e as Error).message).toMatch(/^0\.0\.0\.0:80: permission denied.*another --port/);
    const other = new Error('boom');
    expect(listenError(other, '::1', 80)).toBe(other);
    const inUse6 = listenError(Object.assign(new Error('x'), { code: 'EADDRINUSE' }), '::1', 8080);
    expect((inUse6 as Error).message).toContain('[::1]:8080');
  });
});
