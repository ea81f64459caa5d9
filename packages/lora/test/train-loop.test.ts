// The training loop on an objective with exact gradients: it learns, it is reproducible to the byte,
// and a run killed with SIGKILL after a checkpoint and resumed equals the uninterrupted run step for step.
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainLoop, type TrainLoopResult } from '../src/train/trainer.js';
import { listCheckpoints, loadLatestCheckpoint, checkpointName, CHECKPOINT_DIR } from '../src/train/checkpoint.js';
import { QuadraticModel, quadraticRows } from './quadratic-model.js';
import { QUADRATIC_RUN } from './train-config.js';

const here = path.dirname(fileURLToPath(import.meta.url));
let root: string;
beforeAll(async () => { root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-train-loop-')); });
afterAll(async () => { await fs.rm(root, { recursive: true, force: true }); });

const rows = quadraticRows(QUADRATIC_RUN.rows, 24, 50, 3);
async function run(name: string, over: Partial<typeof QUADRATIC_RUN.config> = {}): Promise<{ res: TrainLoopResult; dir: string }> {
  const dir = path.join(root, name);
  const model = new QuadraticModel(QUADRATIC_RUN.model);
  const res = await trainLoop({ model, train: rows.slice(0, -2), eval: rows.slice(-2), config: { ...QUADRATIC_RUN.config, ...over }, runDir: dir, identity: { model: 'quadratic' } });
  return { res, dir };
}
const finalState = (dir: string) => fs.readFile(path.join(dir, CHECKPOINT_DIR, checkpointName(QUADRATIC_RUN.config.steps), 'state.safetensors'));

describe('training loop', () => {
  it('lowers the eval loss at every eval', async () => {
    const { res } = await run('learns');
    const evals = res.history.evals.map((e) => e.loss);
    expect(evals.length).toBe(4); // before step 0, at 4, 8 and 12
    for (let i = 1; i < evals.length; i++) expect(evals[i]).toBeLessThan(evals[i - 1]!);
  });

  it('gives the same losses and checkpoint bytes for the same seed', async () => {
    const a = await run('same-a');
    const b = await run('same-b');
    expect(b.res.history.steps.map((s) => s.loss)).toEqual(a.res.history.steps.map((s) => s.loss));
    expect(Buffer.compare(await finalState(a.dir), await finalState(b.dir))).toBe(0);
  });

  it('gives other losses for another seed', async () => {
    const a = await run('seed-a');
    const b = await run('seed-b', { seed: 6 });
    expect(b.res.history.steps.map((s) => s.loss)).not.toEqual(a.res.history.steps.map((s) => s.loss));
  });

  it('keeps only the newest checkpoints', async () => {
    const { dir } = await run('keep');
    expect(await listCheckpoints(dir)).toEqual([9, 12]);
  });

  it('resumed after SIGKILL, equals the uninterrupted run step for step and byte for byte', async () => {
    const whole = await run('whole');
    const dir = path.join(root, 'killed');
    const child = spawn(process.execPath, [path.join(here, 'run-ts.mjs'), path.join(here, 'train-child.ts'), dir, '0', '120'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_c, s) => r(s)));
    // kill as soon as the checkpoint of step 6 is complete, mid-way through step 7
    for (;;) {
      if ((await listCheckpoints(dir)).includes(6)) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const ck = await loadLatestCheckpoint<{ history: { steps: unknown[] } }>(dir);
    expect(ck.step).toBeLessThan(QUADRATIC_RUN.config.steps);
    const model = new QuadraticModel(QUADRATIC_RUN.model);
    const res = await trainLoop({ model, train: rows.slice(0, -2), eval: rows.slice(-2), config: QUADRATIC_RUN.config, runDir: dir, resume: true, identity: { model: 'quadratic' } });
    expect(res.resumedFrom).toBe(ck.step);
    expect(res.history.steps.map((s) => s.loss)).toEqual(whole.res.history.steps.map((s) => s.loss));
    expect(res.history.evals.map((s) => s.loss)).toEqual(whole.res.history.evals.map((s) => s.loss));
    expect(Buffer.compare(await finalState(dir), await finalState(whole.dir))).toBe(0);
  });

  it('refuses to resume with other settings', async () => {
    const { dir } = await run('other');
    const model = new QuadraticModel(QUADRATIC_RUN.model);
    const err = await trainLoop({ model, train: rows, eval: [], config: { ...QUADRATIC_RUN.config, lr: 1 }, runDir: dir, resume: true, identity: { model: 'quadratic' } }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/training settings .* differ/);
  });
});
