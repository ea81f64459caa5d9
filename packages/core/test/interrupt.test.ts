import { describe, it, expect } from 'vitest';
import { EventEmitter } from 'node:events';
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createInterruptPolicy, onInterrupt, INTERRUPT_EXIT_CODES } from '../src/index.js';

function harness() {
  const source = new EventEmitter();
  const exits: number[] = [];
  const lines: string[] = [];
  const on = createInterruptPolicy({ source, exit: (c) => void exits.push(c), log: (l) => void lines.push(l) });
  const settle = () => new Promise((r) => setTimeout(r, 10));
  return { source, exits, lines, on, settle };
}

describe('onInterrupt policy', () => {
  it('runs every cleanup once, newest first, prints one line, exits 130 on SIGINT', async () => {
    const h = harness();
    const ran: string[] = [];
    h.on(() => void ran.push('a'), 'convert');
    h.on(async () => { ran.push('b'); return 'removed the partial m.gguf'; }, 'write');
    h.source.emit('SIGINT');
    await h.settle();
    expect(ran).toEqual(['b', 'a']);
    expect(h.lines).toEqual(['qtk: write, convert interrupted (SIGINT); removed the partial m.gguf.']);
    expect(h.exits).toEqual([130]);
  });

  it('exits 143 on SIGTERM and still reports a cleanup that failed', async () => {
    const h = harness();
    h.on(() => { throw new Error('EACCES'); }, 'quantize');
    h.source.emit('SIGTERM');
    await h.settle();
    expect(h.lines).toEqual(['qtk: quantize interrupted (SIGTERM); cleanup of quantize failed: EACCES.']);
    expect(h.exits).toEqual([INTERRUPT_EXIT_CODES.SIGTERM]);
  });

  it('a second signal during cleanup exits at once', async () => {
    const h = harness();
    let release!: () => void;
    h.on(() => new Promise<void>((r) => { release = r; }), 'imatrix');
    h.source.emit('SIGTERM');
    h.source.emit('SIGINT');
    expect(h.exits).toEqual([130]);
    release();
    await h.settle();
    expect(h.exits).toEqual([130, 143]);
  });

  it('off() removes the cleanup and, with none left, the signal listeners', () => {
    const h = harness();
    const off1 = h.on(() => {}, 'a');
    const off2 = h.on(() => {}, 'b');
    expect(h.source.listenerCount('SIGINT')).toBe(1);
    off1();
    off1();
    expect(h.source.listenerCount('SIGTERM')).toBe(1);
    off2();
    expect(h.source.listenerCount('SIGINT')).toBe(0);
    expect(h.source.listenerCount('SIGTERM')).toBe(0);
  });

  it('is inert after off(): a signal then runs nothing', async () => {
    const h = harness();
    let ran = false;
    h.on(() => { ran = true; }, 'a')();
    h.source.emit('SIGINT');
    await h.settle();
    expect(ran).toBe(false);
    expect(h.exits).toEqual([]);
  });
});

describe('onInterrupt on a real process', () => {
  it.each([['SIGINT', 130], ['SIGTERM', 143]] as const)('%s removes the temp file and exits %d', async (signal, code) => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-int-'));
    const tmpFile = path.join(dir, '.out.tmp');
    const src = new URL('../src/interrupt.ts', import.meta.url).pathname;
    // The child runs the module's compiled JavaScript: strip the types with TypeScript's own transpiler.
    const ts = await import('typescript');
    const js = ts.transpileModule(await fs.readFile(src, 'utf8'), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
    await fs.writeFile(path.join(dir, 'interrupt.mjs'), js);
    await fs.writeFile(path.join(dir, 'child.mjs'), `
      import { onInterrupt } from './interrupt.mjs';
      import { writeFileSync, rmSync } from 'node:fs';
      writeFileSync(${JSON.stringify(tmpFile)}, 'partial');
      onInterrupt(() => { rmSync(${JSON.stringify(tmpFile)}); return 'removed the partial out'; }, 'test');
      console.log('ready');
      setInterval(() => {}, 1000);
    `);
    const child = spawn(process.execPath, [path.join(dir, 'child.mjs')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => { stderr += d; });
    await new Promise<void>((r) => child.stdout.once('data', () => r()));
    child.kill(signal);
    const exit = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    expect(exit).toBe(code);
    expect(stderr).toBe(`qtk: test interrupted (${signal}); removed the partial out.\n`);
    expect(await fs.readdir(dir)).toEqual(['child.mjs', 'interrupt.mjs']);
  });
});

// The exported onInterrupt is the real-process policy; registering and removing must not leave listeners.
describe('onInterrupt export', () => {
  it('adds and removes its listeners on process', () => {
    const before = process.listenerCount('SIGTERM');
    const off = onInterrupt(() => {}, 'x');
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    off();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
