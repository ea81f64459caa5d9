// Bad inputs: each is one QtkError that names the problem and the next step, and no output (.gguf or
// temp file) is left behind. Disk full and a read-only folder are real (tiny tmpfs mounts) when this
// runs as root, and simulated through the writer's file handle otherwise.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QtkError, type GgufWriter } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';

let root: string;
let base: string;
const mounts: string[] = [];

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-convert-bad-'));
  ({ dir: base } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'base'), seed: 9, layers: 2 }));
});
afterAll(async () => {
  for (const m of mounts) {
    try { execFileSync('umount', [m]); } catch { /* already gone */ }
  }
  if (root) await fs.rm(root, { recursive: true, force: true });
});

let n = 0;
async function copyFixture(): Promise<string> {
  const dir = path.join(root, `case-${n++}`);
  await fs.cp(base, dir, { recursive: true });
  return dir;
}

/** Runs a conversion expected to fail; returns the QtkError message after checking nothing was left. */
async function failsCleanly(dir: string, outDir: string, extra: Partial<Parameters<typeof convertCheckpoint>[0]> = {}): Promise<string> {
  const before = new Set(await fs.readdir(outDir).catch(() => []));
  const err = await convertCheckpoint({ input: dir, output: path.join(outDir, 'out.gguf'), outtype: 'f32', log: () => {}, ...extra }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(QtkError);
  const left = (await fs.readdir(outDir).catch(() => [])).filter((f) => !before.has(f));
  expect(left).toEqual([]); // neither out.gguf nor .out.gguf.tmp-*
  return (err as QtkError).message;
}

/** A tmpfs of `size` at a fresh folder, or undefined when this process may not mount (not root). */
async function tmpfs(size: string, readOnly = false): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const dir = await fs.mkdtemp(path.join(root, 'mnt-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}${readOnly ? ',ro' : ''}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  mounts.push(dir);
  return dir;
}

/** Makes the writer's file handle fail with `code` after `okWrites` successful writes. */
function failingWrites(code: string, okWrites: number) {
  return (w: GgufWriter): GgufWriter => {
    const handle = (w as unknown as { file: { handle: { write: (...a: unknown[]) => Promise<unknown> } } }).file.handle;
    const write = handle.write.bind(handle);
    let count = 0;
    handle.write = async (...a: unknown[]) => {
      if (count++ >= okWrites) throw Object.assign(new Error(`${code}: simulated, write`), { code });
      return write(...a);
    };
    return w;
  };
}

describe('bad inputs', () => {
  it('missing shard', async () => {
    const dir = await copyFixture();
    await fs.rm(path.join(dir, 'model-00002-of-00002.safetensors'));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/model-00002-of-00002\.safetensors.*missing/);
    expect(msg).toMatch(/re-download/i);
  });

  it('missing tokenizer', async () => {
    const dir = await copyFixture();
    await fs.rm(path.join(dir, 'tokenizer.json'));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/tokenizer\.json.*missing/);
  });

  it('config/tensor shape mismatch', async () => {
    const dir = await copyFixture();
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(await fs.readFile(cfgPath, 'utf8'));
    cfg.intermediate_size *= 2;
    await fs.writeFile(cfgPath, JSON.stringify(cfg));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/has shape \[\d+, \d+\], but config\.json implies \[\d+, \d+\]/);
  });

  it('missing layer (num_hidden_layers larger than the weights)', async () => {
    const dir = await copyFixture();
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(await fs.readFile(cfgPath, 'utf8'));
    cfg.num_hidden_layers += 1;
    await fs.writeFile(cfgPath, JSON.stringify(cfg));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/needs are missing: layer 2/);
  });

  it('extra layer (num_hidden_layers smaller than the weights)', async () => {
    const dir = await copyFixture();
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(await fs.readFile(cfgPath, 'utf8'));
    cfg.num_hidden_layers -= 1;
    await fs.writeFile(cfgPath, JSON.stringify(cfg));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/num_hidden_layers is 1, but the weights have layer 1/);
  });

  it('unknown architecture, listing the supported ones', async () => {
    const dir = await copyFixture();
    const cfgPath = path.join(dir, 'config.json');
    const cfg = JSON.parse(await fs.readFile(cfgPath, 'utf8'));
    cfg.architectures = ['GPTBigCodeForCausalLM'];
    cfg.model_type = 'gpt_bigcode';
    await fs.writeFile(cfgPath, JSON.stringify(cfg));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/"GPTBigCodeForCausalLM" is not supported/);
    for (const a of ['qwen3_5', 'Qwen3_5ForConditionalGeneration', 'qwen3', 'qwen2', 'llama']) expect(msg).toContain(a);
  });

  it('unknown pre-tokenizer regex', async () => {
    const dir = await copyFixture();
    const tjPath = path.join(dir, 'tokenizer.json');
    const tj = JSON.parse(await fs.readFile(tjPath, 'utf8'));
    tj.pre_tokenizer.pretokenizers[0].pattern.Regex = '\\p{N}{1,5}|\\s+';
    await fs.writeFile(tjPath, JSON.stringify(tj));
    const msg = await failsCleanly(dir, dir);
    expect(msg).toMatch(/pre-tokenizer regex .* matches none/);
    expect(msg).toMatch(/qwen2, qwen35/);
  });

  it('unwritable output folder', async () => {
    const ro = await tmpfs('1m', true);
    const notAFolder = path.join(root, 'a-file');
    await fs.writeFile(notAFolder, 'x');
    for (const outDir of [ro, notAFolder].filter((d): d is string => d !== undefined)) {
      const err = await convertCheckpoint({ input: base, output: path.join(outDir, 'out.gguf'), log: () => {} }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(QtkError);
      expect((err as Error).message).toMatch(/cannot write in .*Choose an output folder you can write to/);
    }
    if (ro) expect(await fs.readdir(ro)).toEqual([]);
    else console.log('unwritable output: read-only tmpfs not available (not root); checked a file-as-folder path only');
  });

  it('disk full (a 4 MB tmpfs when root)', async () => {
    const small = await tmpfs('4m');
    if (!small) {
      console.log('disk full: cannot mount a tmpfs here (not root); the simulated ENOSPC test below still runs');
      return;
    }
    const msg = await failsCleanly(base, small);
    expect(msg).toMatch(/disk is full.*partial file was removed.*Free space/);
    expect(await fs.readdir(small)).toEqual([]);
  });

  it('disk full (simulated ENOSPC from the file handle)', async () => {
    const out = await fs.mkdtemp(path.join(root, 'enospc-'));
    const msg = await failsCleanly(base, out, { wrapWriter: failingWrites('ENOSPC', 3) });
    expect(msg).toMatch(/disk is full/);
  });

  it('an existing output is never overwritten without --force', async () => {
    const out = await fs.mkdtemp(path.join(root, 'exists-'));
    const target = path.join(out, 'out.gguf');
    await fs.writeFile(target, 'precious');
    const err = await convertCheckpoint({ input: base, output: target, log: () => {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as Error).message).toMatch(/already exists.*--force/);
    expect(await fs.readFile(target, 'utf8')).toBe('precious');
    expect(await fs.readdir(out)).toEqual(['out.gguf']);
    await convertCheckpoint({ input: base, output: target, force: true, log: () => {} });
    expect((await fs.stat(target)).size).toBeGreaterThan(1000);
  });

  it('an abort mid-run (the library form of Ctrl-C) removes the partial output', async () => {
    const out = await fs.mkdtemp(path.join(root, 'abort-'));
    const listeners = process.listenerCount('SIGINT');
    const ctl = new AbortController();
    let writes = 0;
    const msg = await failsCleanly(base, out, {
      signal: ctl.signal,
      wrapWriter: (w) => {
        const orig = w.writeTensorData.bind(w);
        w.writeTensorData = async (name, chunk) => {
          if (++writes === 5) ctl.abort(new QtkError('interrupted by the caller'));
          return orig(name, chunk);
        };
        return w;
      },
    });
    expect(writes).toBeGreaterThanOrEqual(5);
    expect(msg).toMatch(/interrupted/);
    expect(process.listenerCount('SIGINT')).toBe(listeners); // the interrupt cleanup is gone again
  });
});
