// A checkpoint that does not fit on the disk (a real, tiny tmpfs) fails with one QtkError that names the
// kept checkpoint, leaves no temporary folder, and the earlier checkpoint still loads. Needs root to
// mount, as the convert bad-input tests do.
import { execFileSync } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QtkError } from '@qtk/core';
import { trainLoop } from '../src/train/trainer.js';
import { CHECKPOINT_DIR, listCheckpoints, loadLatestCheckpoint } from '../src/train/checkpoint.js';
import { QuadraticModel, quadraticRows } from './quadratic-model.js';
import { QUADRATIC_RUN } from './train-config.js';

let mnt: string;
beforeAll(async () => {
  mnt = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-train-full-'));
  // one checkpoint of the model below is ~1.06 MB; the disk holds one, not two
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1600k', 'tmpfs', mnt], { stdio: 'ignore' });
});
afterAll(async () => {
  try { execFileSync('umount', [mnt]); } catch { /* not mounted */ }
  await fs.rm(mnt, { recursive: true, force: true });
});

describe('checkpoint on a full disk', () => {
  it('fails cleanly and keeps the finished checkpoint', async () => {
    const model = new QuadraticModel({ modules: 2, dIn: 20000, dOut: 4, rank: 2, scale: 1, seed: 2 });
    const rows = quadraticRows(4, 12, 30, 1);
    const err = await trainLoop({ model, train: rows, eval: [], config: { ...QUADRATIC_RUN.config, steps: 3, saveEvery: 1 }, runDir: mnt }).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(QtkError);
    expect((err as Error).message).toMatch(/cannot write the checkpoint of step 2 \(ENOSPC: no space left on device\); the checkpoint of step 1 .* is intact\. Free disk space, then continue with `qtk lora train --resume/);
    expect(await fs.readdir(path.join(mnt, CHECKPOINT_DIR))).toEqual(['step-000001']);
    expect(await listCheckpoints(mnt)).toEqual([1]);
    expect((await loadLatestCheckpoint(mnt)).step).toBe(1);
  });
});
