// The real engine through the qtk CLI: SIGTERM mid-run writes a checkpoint and exits 143 with one line;
// `--resume` then finishes the run with the same per-step losses and the same adapter bytes as a run
// that was never interrupted.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loraTrainMain, resolveTrainData, RUN_FILES, type TrainRunSummary } from '../src/index.js';
import { TRAIN_REPO, trainFixtureGguf } from './train-fixture.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, 'run-cli.ts');
let root: string;
let gguf: string;
let dataset: string;
let whole: TrainRunSummary;
const FLAGS = { rank: 2, alpha: 4, seqLen: 64, steps: 4, batch: 1, gradAccum: 1, lr: 2e-2, warmup: 0, evalEvery: 0, saveEvery: 0, evalRows: 1, threads: 1, seed: 2 };
const cliFlags = Object.entries(FLAGS).flatMap(([k, v]) => [`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())}`, String(v)]);
const quiet = { write: () => true } as unknown as NodeJS.WriteStream;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-train-signal-'));
  process.env.QTK_CACHE = path.join(root, 'cache');
  gguf = await trainFixtureGguf(root, { layers: 1 });
  dataset = (await resolveTrainData(TRAIN_REPO, { model: gguf, seqLen: 64, build: { evalFraction: 0.25 } })).dir;
  whole = await loraTrainMain({ input: dataset, model: gguf, out: path.join(root, 'whole'), out$: quiet, err$: quiet, flags: FLAGS });
});
afterAll(async () => {
  delete process.env.QTK_CACHE;
  if (root) await fs.rm(root, { recursive: true, force: true });
});

function qtk(args: string[], onStdout?: (line: string, kill: (s: NodeJS.Signals) => void) => void): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [path.join(here, 'run-ts.mjs'), cli, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, CI: '1' } });
  let stderr = '';
  let buf = '';
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      onStdout?.(buf.slice(0, i), (s) => child.kill(s));
      buf = buf.slice(i + 1);
    }
  });
  return new Promise((r) => child.on('exit', (code) => r({ code, stderr })));
}

describe('SIGTERM and --resume through the CLI', () => {
  it('checkpoints on SIGTERM, exits 143, and the resumed run equals the uninterrupted one', async () => {
    const runDir = path.join(root, 'interrupted');
    let sent = false;
    const first = await qtk(['lora', 'train', dataset, '--model', gguf, '-o', runDir, '--json', ...cliFlags], (line, kill) => {
      if (!sent && JSON.parse(line).type === 'step') { sent = true; kill('SIGTERM'); }
    });
    expect(first.code, first.stderr).toBe(143);
    expect(first.stderr.trim().split('\n').filter((l) => l.startsWith('qtk:'))).toHaveLength(1);
    expect(first.stderr).toMatch(/lora train interrupted \(SIGTERM\); checkpoint of step [1-3] saved/);
    expect(JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.trainJson), 'utf8')).status).toBe('interrupted');

    const steps: number[] = [];
    const second = await qtk(['lora', 'train', '--resume', runDir, '--json'], (line) => {
      const o = JSON.parse(line);
      if (o.type === 'step') steps.push(o.loss);
    });
    expect(second.code, second.stderr).toBe(0);
    const wholeLosses = whole.history!.steps.map((s) => s.loss);
    expect(steps).toEqual(wholeLosses.slice(wholeLosses.length - steps.length));
    const a = await fs.readFile(path.join(runDir, RUN_FILES.gguf));
    const b = await fs.readFile(path.join(root, 'whole', RUN_FILES.gguf));
    expect(Buffer.compare(a, b)).toBe(0);
    const pa = await fs.readFile(path.join(runDir, 'adapter', 'adapter_model.safetensors'));
    const pb = await fs.readFile(path.join(root, 'whole', 'adapter', 'adapter_model.safetensors'));
    expect(Buffer.compare(pa, pb)).toBe(0);
  });
});
