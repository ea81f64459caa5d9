// A `--method gptq` run that stops keeps its finished tensors: the same command again reuses them (their
// values replayed into the calibration stream) and writes the same file, byte for byte, as a run that never
// stopped. Stopping is played by removing the later layers' files from a kept checkpoint.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { quantizeGptq } from '../src/gptq/quantize-gptq.js';

const CALIB = 'The quick brown fox jumps over the lazy dog. In 1905, Einstein published four papers that changed physics. '.repeat(12);

describe('quantize --method gptq: resume', () => {
  let dir: string, f16: string, calib: string;
  const run = (output: string, log: string[], keepCheckpoint = false) => quantizeGptq({
    input: f16, output, preset: 'Q4_0', calib, tokens: 256, ctx: 64, calibOutput: false, threads: 2, force: true, keepCheckpoint, log: (l) => log.push(l),
  });
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-gptq-resume-'));
    const fx = await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf'), seed: 4, layers: 4 });
    f16 = path.join(dir, 'fx-F16.gguf');
    await convertCheckpoint({ input: fx.dir, output: f16, outtype: 'f16', log: () => {} });
    calib = path.join(dir, 'calib.txt');
    await writeFile(calib, CALIB);
  }, 300_000);
  afterAll(async () => { if (dir) await rm(dir, { recursive: true, force: true }); });

  it('reuses the finished layers and writes the same bytes as an uninterrupted run', async () => {
    const whole = path.join(dir, 'whole.gguf'), resumed = path.join(dir, 'resumed.gguf');
    await run(whole, []);
    await run(resumed, [], true);
    const ck = `${resumed}.gptq-checkpoint`;
    const later = (await readdir(ck)).filter((f) => /^blk\.[23]\./.test(f));
    for (const f of later) await rm(path.join(ck, f));
    const log: string[] = [];
    await run(resumed, log);
    const kept = (await readdir(ck).catch(() => [])).length;
    expect({
      later: later.length > 0,
      reused: log.some((l) => /tensors reused from the checkpoint/.test(l)),
      same: Buffer.compare(await readFile(whole), await readFile(resumed)) === 0,
      checkpointRemoved: kept === 0 && (await stat(ck).then(() => false, () => true)),
    }).toEqual({ later: true, reused: true, same: true, checkpointRemoved: true });
  }, 300_000);
});
