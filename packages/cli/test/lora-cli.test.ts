// `qtk lora convert`, `qtk lora merge` and `qtk export hf` through the built binary, as a user runs them.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFixture, generatePeftAdapter } from '@qtk/fixtures';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.js');

function qtk(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('qtk lora / export hf', () => {
  let tmp: string;
  let hf: string;
  let peft: string;
  const p = (n: string) => path.join(tmp, n);
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-lora-cli-'));
    hf = (await generateFixture({ arch: 'qwen3', layers: 2, outDir: p('hf'), seed: 4 })).dir;
    peft = (await generatePeftAdapter({ baseDir: hf, outDir: p('peft') })).dir;
    const c = qtk('convert', hf, '-o', p('base.gguf'), '--outtype', 'f32');
    if (c.code !== 0) throw new Error(c.stderr);
  }, 120_000);
  afterAll(() => fs.rm(tmp, { recursive: true, force: true }));

  it('lora convert, lora merge and export hf run end to end', () => {
    const steps = [
      qtk('lora', 'convert', peft, '--base', hf, '-o', p('a.gguf')),
      qtk('lora', 'convert', p('a.gguf'), '--base', p('base.gguf'), '-o', p('peft-back')),
      qtk('lora', 'merge', p('base.gguf'), `${p('a.gguf')}:0.5`, peft, '-o', p('merged.gguf'), '--outtype', 'f16'),
      qtk('export', 'hf', p('merged.gguf'), '--hf', hf, '-o', p('export')),
    ];
    expect(steps.map((s) => [s.code, s.stderr])).toEqual(steps.map(() => [0, '']));
  }, 120_000);

  it('a bad --scale exits 1 with one line naming the flag and the range', () => {
    const r = qtk('lora', 'merge', p('base.gguf'), peft, '-o', p('x.gguf'), '--scale', '1000');
    expect({ code: r.code, line: r.stderr.trim().split('\n').length, msg: /--scale: got "?1000"?; allowed: finite numbers ≥ -100 and ≤ 100/.test(r.stderr) }).toEqual({ code: 1, line: 1, msg: true });
  });

  it('eval ppl with a bad --lora scale names the flag', () => {
    const r = qtk('eval', 'ppl', p('base.gguf'), '--data', p('nothing.txt'), '--lora', `${p('a.gguf')}:lots`);
    expect({ code: r.code, msg: /--lora .*a\.gguf:lots: scale "lots" is not a number/.test(r.stderr) }).toEqual({ code: 1, msg: true });
  });
});
