// The run folder's record of finished stages (stages.json): a stage is skipped when its key (hash of its
// inputs and options) matches the record and its outputs are still there with the recorded sizes. The
// record is rewritten (temp + rename) only after a stage has finished, so a crash or Ctrl-C inside a stage
// leaves it unfinished and the next run starts there.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { fileError } from '@qtk/core';
import { writeFileAtomic } from '@qtk/core';

export const STAGES_FILE = 'stages.json';

export interface StageRecord {
  key: string;
  /** Output paths, relative to the run folder, with their sizes (folders: -1). */
  outputs: Record<string, number>;
  seconds: number;
  finishedAt: string;
  result?: unknown;
}

interface StagesJson {
  format: 'qtk-adapt-stages/1';
  stages: Record<string, StageRecord>;
}

export interface StageOutcome<R> {
  outputs: string[];
  result?: R;
}

export class StageBook {
  private constructor(private readonly runDir: string, private readonly data: StagesJson, private readonly log: (line: string) => void) {}

  static async open(runDir: string, log: (line: string) => void): Promise<StageBook> {
    const file = path.join(runDir, STAGES_FILE);
    let data: StagesJson = { format: 'qtk-adapt-stages/1', stages: {} };
    const text = await fs.readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) {
      try {
        data = JSON.parse(text) as StagesJson;
      } catch (e) {
        throw fileError(file, `is not valid JSON (${(e as Error).message})`, 'Delete it to rerun every stage, or pass -o another folder');
      }
      if (data.format !== 'qtk-adapt-stages/1') throw fileError(file, 'is not a qtk adapt stage record', 'Pass -o a folder that qtk adapt wrote, or a new one');
    }
    return new StageBook(runDir, data, log);
  }

  /** Stages done in this run (not reused), in order. */
  readonly ran: string[] = [];
  readonly reused: string[] = [];

  record(name: string): StageRecord | undefined {
    return this.data.stages[name];
  }

  private async stillThere(rec: StageRecord): Promise<boolean> {
    for (const [rel, size] of Object.entries(rec.outputs)) {
      const st = await fs.stat(path.join(this.runDir, rel)).catch(() => undefined);
      if (!st || (size >= 0 && st.size !== size)) return false;
    }
    return true;
  }

  /** Runs `body` unless the stage's record has this key and its outputs; returns the recorded result. */
  async run<R>(name: string, key: string, body: (dir: string) => Promise<StageOutcome<R>>): Promise<{ result: R; reused: boolean; seconds: number }> {
    const rec = this.data.stages[name];
    if (rec && rec.key === key && (await this.stillThere(rec))) {
      this.reused.push(name);
      this.log(`stage ${name}: reused (finished ${rec.finishedAt}, key ${key.slice(0, 12)})`);
      return { result: rec.result as R, reused: true, seconds: rec.seconds };
    }
    const dir = path.join(this.runDir, name);
    // a stage's folder holds its outputs of one key; resumable work (training) checks its own key file
    const keyFile = path.join(dir, '.stage-key');
    const oldKey = await fs.readFile(keyFile, 'utf8').catch(() => undefined);
    if (oldKey !== key) {
      await fs.rm(dir, { recursive: true, force: true });
      await fs.mkdir(dir, { recursive: true });
      await fs.writeFile(keyFile, key);
    }
    delete this.data.stages[name];
    this.log(`stage ${name}: running${oldKey === key ? ' (continuing its unfinished work)' : ''}`);
    const t0 = performance.now();
    const out = await body(dir);
    const seconds = (performance.now() - t0) / 1000;
    const outputs: Record<string, number> = {};
    for (const o of out.outputs) {
      const st = await fs.stat(o);
      outputs[path.relative(this.runDir, o)] = st.isFile() ? st.size : -1;
    }
    this.data.stages[name] = { key, outputs, seconds, finishedAt: new Date().toISOString(), result: out.result };
    await writeFileAtomic(path.join(this.runDir, STAGES_FILE), JSON.stringify(this.data, null, 2) + '\n');
    this.ran.push(name);
    this.log(`stage ${name}: done in ${seconds.toFixed(1)} s`);
    return { result: out.result as R, reused: false, seconds };
  }

  /** Seconds each stage took when it ran (reused stages keep their first run's time). */
  times(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.data.stages).map(([k, v]) => [k, v.seconds]));
  }
}
