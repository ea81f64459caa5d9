// SIGINT and SIGTERM halfway through convert, quantize and imatrix, sent to the built `qtk` bin:
// the run exits 130/143 with one line, and the working folder is exactly as it was before. `export gptq`
// keeps its finished linears for a resumed run, and its line says where.
// "Halfway" is measured, not guessed: a first run gives the finished output's size (or, for
// imatrix, which writes only at the end, its wall time), the second is signalled at half of it.
import { describe, it, expect, beforeAll } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFixture } from '@qtk/fixtures';
import { snapshot } from './dir-snapshot.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../bin/qtk.js');
const SIGNALS = [['SIGINT', 130], ['SIGTERM', 143]] as const;

function start(cwd: string, args: string[]): { child: ChildProcess; done: Promise<{ code: number | null; stderr: string }> } {
  const child = spawn(process.execPath, [bin, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, CI: 'true' } });
  let stderr = '';
  child.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<{ code: number | null; stderr: string }>((r) => child.on('exit', (code) => r({ code, stderr })));
  return { child, done };
}

async function runToEnd(cwd: string, args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await start(cwd, args).done;
  expect(r.code, r.stderr).toBe(0);
  return performance.now() - t0;
}

/** Resolves once a hidden temp file beside `output` has reached `bytes`; the size the signal is sent at. */
async function tempReaches(dir: string, output: string, bytes: number, exited: Promise<unknown>): Promise<number> {
  let over = false;
  void exited.then(() => { over = true; });
  for (;;) {
    for (const f of await fs.readdir(dir)) {
      if (!f.startsWith(`.${output}.tmp-`)) continue;
      const size = await fs.stat(path.join(dir, f)).then((s) => s.size, () => 0);
      if (size >= bytes) return size;
    }
    if (over) throw new Error(`the run ended before its temp file reached ${bytes} bytes`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('interrupted runs leave the folder as it was', () => {
  let work: string;
  beforeAll(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-signal-'));
    await generateFixture({ arch: 'qwen3_5', outDir: path.join(work, 'hf'), seed: 5 });
    await runToEnd(work, ['convert', 'hf', '-o', 'm-f16.gguf']);
    await fs.writeFile(path.join(work, 'text.txt'), 'The quick brown fox jumps over the lazy dog, again and again. '.repeat(400));
  });

  describe.each([
    ['convert', ['convert', 'hf', '-o', 'out.gguf', '--outtype', 'f32'], 'out.gguf'],
    ['quantize', ['quantize', 'm-f16.gguf', 'out.gguf', '--type', 'Q4_K_M', '--threads', '1'], 'out.gguf'],
  ])('%s', (_name, args, output) => {
    let full = 0;
    beforeAll(async () => {
      await runToEnd(work, args);
      full = (await fs.stat(path.join(work, output))).size;
      await fs.rm(path.join(work, output));
    });
    it.each(SIGNALS)('%s at half the output exits %d and leaves nothing', async (signal, code) => {
      const before = await snapshot(work);
      const run = start(work, args);
      const at = await tempReaches(work, output, full / 2, run.done);
      run.child.kill(signal);
      const r = await run.done;
      expect(at).toBeLessThan(full);
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^qtk: .*interrupted \\(${signal}\\); removed the partial .*${output}\\.$`));
      expect(await snapshot(work)).toEqual(before);
    });
  });

  describe('imatrix', () => {
    const args = ['imatrix', 'm-f16.gguf', '--data', 'text.txt', '--ctx', '128', '--chunks', '8', '--threads', '1', '-o', 'imatrix.gguf'];
    let fullMs = 0;
    beforeAll(async () => {
      fullMs = await runToEnd(work, args);
      await fs.rm(path.join(work, 'imatrix.gguf'));
    });
    it.each(SIGNALS)('%s at half the run time exits %d and leaves nothing', async (signal, code) => {
      const before = await snapshot(work);
      const run = start(work, args);
      let exitedEarly = false;
      void run.done.then(() => { exitedEarly = true; });
      await new Promise((r) => setTimeout(r, fullMs / 2));
      expect(exitedEarly).toBe(false);
      run.child.kill(signal);
      const r = await run.done;
      expect(r.code, r.stderr).toBe(code);
      expect(r.stderr.trim().split('\n').at(-1)).toMatch(new RegExp(`^qtk: imatrix interrupted \\(${signal}\\)`));
      expect(await snapshot(work)).toEqual(before);
    });
  });

  describe('export gptq', () => {
    it('SIGINT after the first finished linear exits 130, removes the partial output and names the kept checkpoint', async () => {
      const args = ['export', 'gptq', 'm-f16.gguf', '--hf', 'hf', '-o', 'gq', '--calib', 'text.txt', '--calib-tokens', '256', '--ctx', '128', '--threads', '1'];
      const ckpt = path.join(work, 'gq.gptq-checkpoint');
      const run = start(work, args);
      let over = false;
      void run.done.then(() => { over = true; });
      const finished = async () => (await fs.readdir(ckpt).catch(() => [] as string[])).filter((f) => f.endsWith('.bin'));
      while ((await finished()).length === 0) {
        if (over) throw new Error(`the run ended before a linear was finished: ${(await run.done).stderr}`);
        await new Promise((r) => setTimeout(r, 5));
      }
      run.child.kill('SIGINT');
      const r = await run.done;
      try {
        expect(r.code, r.stderr).toBe(130);
        expect(r.stderr.trim().split('\n').at(-1)).toMatch(/^qtk: export gptq interrupted \(SIGINT\); removed the partial .*gq\.tmp-\d+; finished linears are kept in .*gq\.gptq-checkpoint and the same command resumes from them\.$/);
        expect((await finished()).length).toBeGreaterThan(0);
      } finally {
        await fs.rm(ckpt, { recursive: true, force: true });
      }
    });
  });
});
