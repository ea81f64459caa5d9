// The built `qtk` binary, run as a user runs it (needs `npm run build`; `npm test` builds first).
import { describe, it, expect, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateFixture } from '@qtk/fixtures';
import { COMMANDS } from '../src/commands/index.js';

const bin = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../dist/main.js');

function qtk(...args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { ...process.env, CI: 'true' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('qtk', () => {
  let tmp: string;
  beforeAll(async () => {
    tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-cli-'));
  });

  it('--help lists exactly the commands of the table', () => {
    const r = qtk('--help');
    expect(r.code).toBe(0);
    const listed = [...r.stdout.matchAll(/^ {2}qtk ([a-z-]+)/gm)].map((m) => m[1]);
    expect(listed.sort()).toEqual(COMMANDS.map((c) => c.command.split(' ')[0]).sort());
  });

  it('refuses an unknown command and suggests help', () => {
    const r = qtk('frobnicate');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Unknown argument|Unknown command|Did you mean/i);
  });

  it('inspect prints a checkpoint\'s tensors', async () => {
    const fx = await generateFixture({ arch: 'qwen3_5', outDir: path.join(tmp, 'fx'), seed: 3 });
    const r = qtk('inspect', fx.dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('model.language_model.embed_tokens.weight');
    expect(r.stdout).toContain('BF16');
    const j = qtk('inspect', fx.dir, '--json');
    expect(j.code, j.stderr).toBe(0);
    const parsed = JSON.parse(j.stdout);
    expect(JSON.stringify(parsed)).toContain('lm_head.weight');
  });

  it('inspect on a non-model file says what it expected, without a stack trace', async () => {
    const f = path.join(tmp, 'notes.txt');
    await fs.writeFile(f, 'hello, not a model\n');
    const r = qtk('inspect', f);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^qtk: /);
    expect(r.stderr).toMatch(/\.gguf|safetensors/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('plan prints the preset table and the recommendation for a config.json', async () => {
    const { QWEN3_6_27B_CONFIG } = await import('@qtk/fixtures');
    const f = path.join(tmp, 'config.json');
    await fs.writeFile(f, JSON.stringify(QWEN3_6_27B_CONFIG));
    const r = qtk('plan', f, '--vram', '24GiB', '--ctx', '32768');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^recommended: Q\d_K/m);
  });

  it('plan exits 1 after the table when no preset fits the card', async () => {
    const { QWEN3_6_27B_CONFIG } = await import('@qtk/fixtures');
    const f = path.join(tmp, 'config-small-card.json');
    await fs.writeFile(f, JSON.stringify(QWEN3_6_27B_CONFIG));
    const r = qtk('plan', f, '--vram', '8GiB', '--ctx', '32768');
    expect({ code: r.code, verdict: r.stdout.match(/^(nothing fits|recommended):/m)?.[1] }).toEqual({ code: 1, verdict: 'nothing fits' });
  });

  it('plan refuses a malformed --vram in one line naming the flag', () => {
    const r = qtk('plan', tmp, '--vram', 'lots');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--vram/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('quantize --fit refuses --type beside it', () => {
    const r = qtk('quantize', path.join(tmp, 'none.gguf'), '--fit', '1GiB', '--type', 'Q4_K_M');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--fit chooses every tensor's type itself/);
  });
});
