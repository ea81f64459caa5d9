// Write to "<target>.tmp-<pid>-<n>" and rename over the target only when complete, so an
// interrupted run never leaves a truncated file and a user's existing file is never half-overwritten.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError } from './errors.js';

let counter = 0;

export interface AtomicFile {
  /** The temporary path being written. */
  readonly tmpPath: string;
  readonly targetPath: string;
  readonly handle: fs.FileHandle;
  /** fsync, close, rename onto the target. */
  commit(): Promise<void>;
  /** Close and delete the temporary file (safe to call twice, and after commit it does nothing). */
  abort(): Promise<void>;
}

export async function openAtomic(targetPath: string, opts: { overwrite?: boolean } = {}): Promise<AtomicFile> {
  if (!opts.overwrite) {
    const exists = await fs.stat(targetPath).then(() => true, () => false);
    if (exists) {
      throw new QtkError(`${targetPath}: already exists. Pass --force to overwrite it, or choose another output path.`, { file: targetPath });
    }
  }
  const dir = path.dirname(path.resolve(targetPath));
  const tmpPath = path.join(dir, `.${path.basename(targetPath)}.tmp-${process.pid}-${counter++}`);
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(tmpPath, 'wx');
  } catch (e) {
    throw new QtkError(`${targetPath}: cannot write in ${dir} (${(e as Error).message}). Choose an output folder you can write to.`, { file: targetPath, cause: e });
  }
  let state: 'open' | 'committed' | 'aborted' = 'open';
  return {
    tmpPath,
    targetPath,
    handle,
    async commit() {
      if (state !== 'open') throw new Error(`atomic file ${tmpPath}: commit after ${state}`);
      await handle.sync();
      await handle.close();
      await fs.rename(tmpPath, targetPath);
      state = 'committed';
    },
    async abort() {
      if (state !== 'open') return;
      state = 'aborted';
      await handle.close().catch(() => {});
      await fs.rm(tmpPath, { force: true });
    },
  };
}

/** A small whole-file output (a record, a report, a plot) through a temp file and a rename, never half-written. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const f = await openAtomic(file, { overwrite: true });
  try {
    await f.handle.writeFile(data);
    await f.commit();
  } catch (e) {
    await f.abort();
    throw e;
  }
}
