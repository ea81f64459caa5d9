// `qtk lora train` refuses bad input before any work, each with one QtkError naming the value and the
// limit: a model that is not qwen35/qwen3, a seq-len above the context, a rank above a module's
// dimensions, an unknown target, a dataset of another tokenizer, an empty train split. A repository's
// dataset is built with the model's tokenizer once and reused by the next run.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GgufWriter, QtkError } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { buildDataset, loraTrainMain, resolveTrainData, type LoraTrainArgs } from '../src/index.js';
import { codeText } from './dataset-fixture.js';

let root: string;
let gguf: string;
let repo: string;
let built: Awaited<ReturnType<typeof resolveTrainData>>;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-train-inputs-'));
  process.env.QTK_CACHE = path.join(root, 'cache');
  const { dir } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'ckpt'), layers: 1, hidden: 64, heads: 2, kvHeads: 1, headDim: 32 });
  gguf = (await convertCheckpoint({ input: dir, output: path.join(root, 'tiny.gguf'), outtype: 'f16', log: () => {} })).output;
  repo = path.join(root, 'repo');
  await fs.mkdir(path.join(repo, 'src'), { recursive: true });
  for (let i = 0; i < 12; i++) await fs.writeFile(path.join(repo, 'src', `m${i}.ts`), codeText(`mod${i}x`, 10));
  built = await resolveTrainData(repo, { model: gguf, seqLen: 128 });
});
afterAll(async () => {
  delete process.env.QTK_CACHE;
  if (root) await fs.rm(root, { recursive: true, force: true });
});

async function fails(args: Partial<LoraTrainArgs> & { flags?: Record<string, unknown> }): Promise<string> {
  const err = await loraTrainMain({ input: repo, model: gguf, out: path.join(root, 'runs', String(Math.random())), plan: true, ...args, flags: { rank: 2, ...args.flags } }).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(QtkError);
  const msg = (err as Error).message;
  expect(msg.split('\n')).toHaveLength(1);
  return msg;
}

describe('lora train input checks', () => {
  it('refuses a model that is not qwen35 or qwen3', async () => {
    const other = path.join(root, 'llama.gguf');
    const w = await GgufWriter.create(other);
    w.add('general.architecture', 'STRING', 'llama');
    await w.finish();
    expect(await fails({ model: other })).toMatch(/architecture 'llama'.*qwen35, qwen3/);
  });

  it('refuses a seq-len above the model context', async () => {
    expect(await fails({ flags: { seqLen: 1 << 20 } })).toMatch(/--seq-len 1048576 is above .*context of \d+ tokens/);
  });

  it('refuses a rank above a module dimension', async () => {
    expect(await fails({ flags: { rank: 100, targets: ['k_proj'] } })).toMatch(/--rank 100 is larger than .*k_proj allows \(32×64, at most 32\)/);
  });

  it('refuses an unknown target name', async () => {
    expect(await fails({ flags: { targets: ['q_proj,qq_proj'] } })).toMatch(/--targets: "qq_proj" is not a target/);
  });

  it('refuses a target group the model does not have', async () => {
    expect(await fails({ flags: { targets: ['gdn'] } })).toMatch(/has no such module/);
  });

  it('refuses an out-of-range numeric flag', async () => {
    expect(await fails({ flags: { lr: -1 } })).toMatch(/--lr: got -1/);
  });

  it('refuses a dataset made with another tokenizer', async () => {
    const dir = path.join(root, 'ds-other');
    await fs.cp(built.dir, dir, { recursive: true });
    const mf = path.join(dir, 'manifest.json');
    const m = JSON.parse(await fs.readFile(mf, 'utf8'));
    m.tokenizer.fingerprint = 'sha256:' + '0'.repeat(64);
    await fs.writeFile(mf, JSON.stringify(m));
    expect(await fails({ input: dir })).toMatch(/tokenizer fingerprint sha256:0+\), but .*tiny\.gguf has sha256:[0-9a-f]{64}\. .*qtk dataset build/);
  });

  it('refuses an empty train split', async () => {
    const { dir } = await buildDataset({ repo, tokenizer: gguf, outDir: path.join(root, 'ds'), name: 'alleval', seqLen: 128, evalFraction: 1 });
    expect(await fails({ input: dir })).toMatch(/train split holds no row/);
  });
});

describe('--plan', () => {
  it('prints steps, tokens and memory, and writes nothing', async () => {
    let printed = '';
    const out = { write: (t: string) => { printed += t; return true; } } as unknown as NodeJS.WriteStream;
    const runDir = path.join(root, 'runs', 'planned');
    const r = await loraTrainMain({ input: built.dir, model: gguf, out: runDir, plan: true, out$: out, err$: { write: () => true } as unknown as NodeJS.WriteStream, flags: { rank: 2, steps: 3, gradAccum: 2 } });
    expect(r.status).toBe('planned');
    expect(printed).toMatch(/^plan: 3 steps × 2 rows = \d+ tokens .*\n.*LoRA \d+ parameters.*\n.*memory ≈ [\d.]+ MiB peak: process/);
    expect(r.plan.memory!.parts.base).toBeGreaterThan(0);
    expect(await fs.stat(runDir).then(() => true, () => false)).toBe(false);
  });
});

describe('repository input', () => {
  it('builds the dataset once and reuses it for the same tree', async () => {
    const again = await resolveTrainData(repo, { model: gguf, seqLen: 128 });
    expect([built.origin, again.origin]).toEqual(['built', 'cached']);
    expect(again.dir).toBe(built.dir);
  });

  it('builds again when a file changes', async () => {
    await fs.appendFile(path.join(repo, 'src', 'm0.ts'), '// changed\n');
    const b = await resolveTrainData(repo, { model: gguf, seqLen: 128 });
    expect(b.origin).toBe('built');
    expect(b.dir).not.toBe(built.dir);
  });
});
