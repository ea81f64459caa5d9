// The plan from Qwen3.6-27B's config alone (no weights): the training base and final preset chosen at 24 and
// 48 GiB, the refusal at 16 GiB naming the minimum, and options surviving report.json's round trip.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QWEN3_6_27B_CONFIG } from '@qtk/fixtures';
import { describeBase, formatAdaptPlan, optionsAsFlags, parseAdaptOptions, planAdapt, type BaseModel } from '../src/index.js';

let dir: string;
let base: BaseModel;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-adapt-plan-'));
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(QWEN3_6_27B_CONFIG));
  base = await describeBase(path.join(dir, 'config.json'));
});
afterAll(async () => {
  if (dir) await fs.rm(dir, { recursive: true, force: true });
});

describe('qtk adapt --plan for Qwen3.6-27B', () => {
  it('at 24GiB trains QLoRA on IQ4_XS and serves Q6_K at 32k', () => {
    const p = planAdapt(base, parseAdaptOptions({ vram: '24GiB' }));
    expect([p.train.base, p.final.preset]).toEqual(['IQ4_XS', 'Q6_K']);
  });

  it('at 48GiB trains QLoRA on Q8_0 (LoRA on F16 does not fit) and serves Q8_0', () => {
    const p = planAdapt(base, parseAdaptOptions({ vram: '48GiB' }));
    expect([p.trainCandidates[0]!.fits, p.train.base, p.final.preset]).toEqual([false, 'Q8_0', 'Q8_0']);
  });

  it('at 16GiB refuses, naming the budget training would need', () => {
    expect(() => planAdapt(base, parseAdaptOptions({ vram: '16GiB' }))).toThrow(/training does not fit.*QLoRA on IQ4_XS, needs 21\.95 GiB.*Pass --vram 22\.95GiB or more/);
  });

  it('options written to report.json parse back to the same options', () => {
    const o = parseAdaptOptions({ vram: '24GiB', steps: '10', fit: 'auto', method: 'imatrix', rank: '8', baseline: true });
    expect(parseAdaptOptions(optionsAsFlags(o))).toEqual(o);
  });

  it('estimates a time for every stage whose work the plan knows, training from --steps', () => {
    const p = planAdapt(base, parseAdaptOptions({ vram: '24GiB', steps: '100', threads: '4' }));
    const timed = Object.fromEntries(p.stages.filter((s) => !s.skipped).map((s) => [s.name, s.seconds !== undefined]));
    expect(timed).toEqual({ convert: true, dataset: false, 'train-base': true, train: true, merge: true, calibrate: true, quantize: true, eval: true, serve: false });
  });

  it('scales the training estimate with the tokens it will see and the threads', () => {
    const t = (steps: string, threads: string) => planAdapt(base, parseAdaptOptions({ vram: '24GiB', steps, threads })).stages.find((s) => s.name === 'train')!.seconds!;
    expect([t('200', '4') / t('100', '4'), t('100', '4') / t('100', '8')]).toEqual([2, 2]);
  });

  it('says where training time needs the dataset (epochs, no --steps)', () => {
    expect(formatAdaptPlan(planAdapt(base, parseAdaptOptions({ vram: '24GiB' })))).toMatch(/train .*time: per epoch, known once the dataset is built/);
  });
});
