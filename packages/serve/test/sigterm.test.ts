// `qtk serve` as a real process: SIGTERM during a stream lets the stream finish, refuses new work,
// and the process exits 0.
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import OpenAI from 'openai';
import { buildTinyModel, type TinyModel } from './tiny-model.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let tiny: TinyModel;
let child: ChildProcess | undefined;

beforeAll(async () => {
  tiny = await buildTinyModel('qwen3');
});

afterAll(async () => {
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await tiny?.cleanup();
});

it('drains an in-flight stream on SIGTERM and exits 0', async () => {
  const cli = path.resolve(here, '../../cli/src/main.ts');
  child = spawn(process.execPath, [path.join(here, 'run-ts.mjs'), cli, 'serve', tiny.gguf, '--port', '0', '--no-gpu', '--threads', '1', '--parallel', '2', '--ctx', '512'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  const exited = new Promise<number | null>((resolve) => child!.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${stderr}`)), 120_000);
    child!.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const m = /on (http:\/\/[^\s]+)/.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    child!.on('exit', () => reject(new Error(`server exited early: ${stderr}`)));
  });
  const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
  const stream = await client.chat.completions.create({ model: 'tiny-qwen3', messages: [{ role: 'user', content: 'Tell me everything' }], max_tokens: 200, temperature: 0, stream: true });
  let before = 0;
  let after = 0;
  let finish: string | null = null;
  let text = '';
  let refused: unknown;
  for await (const c of stream) {
    text += c.choices[0]?.delta.content ?? '';
    finish = c.choices[0]?.finish_reason ?? finish;
    if (before < 3) {
      if (++before === 3) {
        child.kill('SIGTERM');
        await new Promise((r) => setTimeout(r, 100));
        // New work is refused while draining: the listener is closed (or answers 503).
        refused = await fetch(`${url}/health`).then((r) => r.status, (e: Error) => e.name);
      }
    } else after++;
  }
  expect(after).toBeGreaterThan(0); // the stream kept going after SIGTERM
  expect(finish === 'length' || finish === 'stop').toBe(true);
  expect(text.length).toBeGreaterThan(0);
  expect(refused === 503 || refused === 'TypeError').toBe(true);
  expect(await exited).toBe(0);
  expect(stderr).toContain('SIGTERM');
  expect(stderr).toContain('qtk serve: stopped');
});
