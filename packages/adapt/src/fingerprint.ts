// Stage keys: a stage's output is reused only when the hash of its inputs and options is unchanged.
// User inputs get a content fingerprint; a file is identified by its size, mtime and a hash of its first and
// last MiB (reading every byte of a 55 GB checkpoint on each run would cost minutes), so an edit that keeps
// size, mtime and both ends is not seen. Stage outputs are identified by their stage's key (the chain).
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { selectPaths } from '@qtk/lora';

const EDGE = 1 << 20;

export async function fileFingerprint(file: string): Promise<string> {
  const st = await fs.stat(file);
  const h = createHash('sha256').update(`${st.size}\0${Math.round(st.mtimeMs)}\0`);
  const fd = await fs.open(file, 'r');
  try {
    const head = Buffer.alloc(Math.min(EDGE, st.size));
    await fd.read(head, 0, head.length, 0);
    h.update(head);
    if (st.size > EDGE) {
      const tail = Buffer.alloc(Math.min(EDGE, st.size - EDGE));
      await fd.read(tail, 0, tail.length, st.size - tail.length);
      h.update(tail);
    }
  } finally {
    await fd.close();
  }
  return h.digest('hex');
}

/** A Hugging Face folder: the fingerprints of its files (config, tokenizer, weights), by name. */
export async function folderFingerprint(dir: string): Promise<string> {
  const h = createHash('sha256');
  const names = (await fs.readdir(dir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort();
  for (const n of names) h.update(`${n}\0${await fileFingerprint(path.join(dir, n))}\0`);
  return h.digest('hex');
}

/** A repository: every file the dataset builder would consider, by path, size and content (a run folder inside it left out). */
export async function repoFingerprint(repo: string, runDir?: string): Promise<string> {
  const sel = await selectPaths(repo, { skipVendored: true });
  const h = createHash('sha256');
  const skip = runDir ? path.relative(path.resolve(repo), path.resolve(runDir)) : undefined;
  for (const rel of sel.paths) {
    if (skip && !skip.startsWith('..') && (rel === skip || rel.startsWith(skip + path.sep))) continue;
    const st = await fs.lstat(path.join(repo, rel)).catch(() => undefined);
    if (!st?.isFile()) continue;
    h.update(`${rel}\0${st.size}\0`);
    h.update(st.size <= 4 * EDGE ? await fs.readFile(path.join(repo, rel)) : await fileFingerprint(path.join(repo, rel)));
  }
  return h.digest('hex');
}

export function stageKey(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 32);
}
