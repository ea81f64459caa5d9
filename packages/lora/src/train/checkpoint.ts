// Checkpoints: checkpoints/step-NNNNNN/{state.safetensors,state.json}, written into a temporary folder
// and renamed into place, so a folder with that name is always complete. Older checkpoints are removed
// only after a newer one is in place: a failed write (full disk) never costs a finished checkpoint.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, SafetensorsFile, buildSafetensorsHeader, type SafetensorsWriterTensor } from '@qtk/core';

export const CHECKPOINT_DIR = 'checkpoints';
export const CHECKPOINT_FORMAT = 'qtk-lora-checkpoint/1';
const STATE_TENSORS = 'state.safetensors';
const STATE_JSON = 'state.json';

/** The four f32 arrays kept per adapted module: weights, then AdamW's first and second moments. */
export const CHECKPOINT_SLOTS = ['lora_A', 'lora_B', 'lora_A.exp_avg', 'lora_B.exp_avg', 'lora_A.exp_avg_sq', 'lora_B.exp_avg_sq'] as const;

export interface CheckpointTensor {
  module: string;
  shapeA: readonly [number, number];
  shapeB: readonly [number, number];
  /** In CHECKPOINT_SLOTS order. */
  arrays: readonly Float32Array[];
}

export interface CheckpointState<J = unknown> {
  format: typeof CHECKPOINT_FORMAT;
  /** Optimizer steps completed. */
  step: number;
  /** Everything else the run needs to continue (config, data position, metrics so far). */
  json: J;
}

export function checkpointName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

async function writeFileSynced(file: string, parts: readonly Uint8Array[]): Promise<void> {
  const fh = await fs.open(file, 'wx');
  try {
    for (const p of parts) {
      let done = 0;
      while (done < p.length) done += (await fh.write(p, done, p.length - done)).bytesWritten;
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
}

function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

const WRITE_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EIO', 'EROFS']);

/**
 * Writes the checkpoint of `step` under runDir/checkpoints and removes all but the newest `keep`.
 * A write that fails (no space, quota, file size limit) leaves the earlier checkpoints as they were.
 */
export async function writeCheckpoint(runDir: string, step: number, tensors: readonly CheckpointTensor[], json: unknown, keep = 2): Promise<string> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  await fs.mkdir(root, { recursive: true });
  const name = checkpointName(step);
  const final = path.join(root, name);
  const tmp = path.join(root, `.${name}.tmp-${process.pid}`);
  await fs.rm(tmp, { recursive: true, force: true });
  try {
    await fs.mkdir(tmp);
    const decl: SafetensorsWriterTensor[] = [];
    const data: Uint8Array[] = [];
    for (const t of tensors) {
      CHECKPOINT_SLOTS.forEach((slot, i) => {
        decl.push({ name: `${t.module}.${slot}`, dtype: 'F32', shape: [...(slot.startsWith('lora_A') ? t.shapeA : t.shapeB)] });
        data.push(bytesOf(t.arrays[i]!));
      });
    }
    const header = buildSafetensorsHeader(decl, { format: CHECKPOINT_FORMAT });
    await writeFileSynced(path.join(tmp, STATE_TENSORS), [header.bytes, ...data]);
    const state: CheckpointState = { format: CHECKPOINT_FORMAT, step, json };
    await writeFileSynced(path.join(tmp, STATE_JSON), [new TextEncoder().encode(JSON.stringify(state) + '\n')]);
    await fs.rm(final, { recursive: true, force: true });
    await fs.rename(tmp, final);
  } catch (e) {
    await fs.rm(tmp, { recursive: true, force: true }).catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    const kept = (await listCheckpoints(runDir)).filter((s) => s !== step).pop();
    const keptText = kept === undefined ? 'no earlier checkpoint exists' : `the checkpoint of step ${kept} (${path.join(root, checkpointName(kept))}) is intact`;
    if (code && WRITE_ERRORS.has(code)) {
      throw new QtkError(`${final}: cannot write the checkpoint of step ${step} (${code}: ${code === 'ENOSPC' ? 'no space left on device' : (e as Error).message}); ${keptText}. Free disk space, then continue with \`qtk lora train --resume ${runDir}\`.`, { file: final, cause: e });
    }
    throw e;
  }
  const all = await listCheckpoints(runDir);
  for (const s of all.slice(0, Math.max(0, all.length - keep))) await fs.rm(path.join(root, checkpointName(s)), { recursive: true, force: true });
  return final;
}

/** Steps of the complete checkpoints in runDir, oldest first. */
export async function listCheckpoints(runDir: string): Promise<number[]> {
  const root = path.join(runDir, CHECKPOINT_DIR);
  const names = await fs.readdir(root).catch(() => [] as string[]);
  const steps: number[] = [];
  for (const n of names) {
    const m = /^step-(\d+)$/.exec(n);
    if (m && (await fs.stat(path.join(root, n, STATE_JSON)).catch(() => undefined))) steps.push(Number(m[1]));
  }
  return steps.sort((a, b) => a - b);
}

export interface LoadedCheckpoint<J> {
  dir: string;
  step: number;
  json: J;
  /** Per module, the arrays in CHECKPOINT_SLOTS order. */
  tensors: Map<string, Float32Array[]>;
}

/** The newest complete checkpoint of runDir, or a one-line error when there is none. */
export async function loadLatestCheckpoint<J>(runDir: string): Promise<LoadedCheckpoint<J>> {
  const steps = await listCheckpoints(runDir);
  const step = steps.at(-1);
  if (step === undefined) {
    throw new QtkError(`${runDir}: no checkpoint to resume from (no ${CHECKPOINT_DIR}/step-*/${STATE_JSON}). Pass --resume the run folder of a run that saved a checkpoint, or start a new run.`, { file: runDir });
  }
  const dir = path.join(runDir, CHECKPOINT_DIR, checkpointName(step));
  const state = JSON.parse(await fs.readFile(path.join(dir, STATE_JSON), 'utf8')) as CheckpointState<J>;
  if (state.format !== CHECKPOINT_FORMAT) {
    throw new QtkError(`${dir}/${STATE_JSON}: checkpoint format ${JSON.stringify(state.format)}, expected "${CHECKPOINT_FORMAT}". Resume it with the qtk version that wrote it, or start a new run.`, { file: dir });
  }
  const st = await SafetensorsFile.open(path.join(dir, STATE_TENSORS));
  const tensors = new Map<string, Float32Array[]>();
  try {
    for (const name of st.tensors.keys()) {
      // the slot suffixes are distinct as endings (".lora_A.exp_avg" is not an ending of "….exp_avg_sq")
      const slot = CHECKPOINT_SLOTS.find((s) => name.endsWith(`.${s}`));
      if (!slot) continue;
      const module = name.slice(0, -(slot.length + 1));
      const bytes = await st.read(name);
      const arr = new Float32Array(bytes.byteLength / 4);
      new Uint8Array(arr.buffer).set(bytes);
      const list = tensors.get(module) ?? [];
      list[CHECKPOINT_SLOTS.indexOf(slot)] = arr;
      tensors.set(module, list);
    }
  } finally {
    await st.close();
  }
  return { dir, step: state.step, json: state.json, tensors };
}
