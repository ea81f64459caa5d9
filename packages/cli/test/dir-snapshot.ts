// A folder's exact state: every entry (dot files included) with its type, size, inode and content hash.
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';

/** Every entry under dir (dot files and folders included) with its type, size and content hash. */
export async function snapshot(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(rel: string): Promise<void> {
    for (const e of await fs.readdir(path.join(dir, rel), { withFileTypes: true })) {
      const r = path.join(rel, e.name);
      const abs = path.join(dir, r);
      if (e.isSymbolicLink()) out.push(`${r} -> ${await fs.readlink(abs)}`);
      else if (e.isDirectory()) { out.push(`${r}/`); await walk(r); }
      else {
        const st = await fs.stat(abs);
        out.push(`${r} ${st.size} ${st.ino} ${createHash('sha256').update(await fs.readFile(abs)).digest('hex')}`);
      }
    }
  }
  await walk('');
  return out.sort();
}
