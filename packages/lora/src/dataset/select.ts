// Which paths of a repository are candidates: `git ls-files` in a git work tree (tracked plus untracked-
// but-not-ignored, so .gitignore at every level, .git/info/exclude and core.excludesFile apply as git
// applies them), otherwise a walk that reads the same .gitignore files. Both return the same sorted list
// for the same tree, so a git checkout and a plain copy of it give identical datasets.
import { execFile } from 'node:child_process';
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { promisify } from 'node:util';
import ignore, { type Ignore } from 'ignore';
import { VENDORED_DIRS } from './rules.js';

const run = promisify(execFile);

export interface Selection {
  mode: 'git' | 'walk';
  /** Repository-relative POSIX paths of everything that is not a folder, sorted by code unit. */
  paths: string[];
  /** Folders a walk did not enter because their name marks vendored or generated trees (one count each). */
  prunedVendoredDirs: number;
  commit?: string;
  dirty?: boolean;
}

export function sortPaths(paths: string[]): string[] {
  return paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

async function git(repo: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run('git', ['-C', repo, ...args], { maxBuffer: 1 << 30, encoding: 'utf8' });
    return stdout;
  } catch {
    return undefined;
  }
}

export async function selectPaths(repo: string, opts: { skipVendored: boolean }): Promise<Selection> {
  const inside = await git(repo, ['rev-parse', '--is-inside-work-tree']);
  // A folder that its enclosing checkout ignores (e.g. node_modules) is walked as a tree of its own.
  const ignoredByParent = inside?.trim() === 'true' && (await git(repo, ['check-ignore', '-q', '.'])) !== undefined;
  if (inside?.trim() === 'true' && !ignoredByParent) {
    const listed = await git(repo, ['ls-files', '-z', '--cached', '--others', '--exclude-standard']);
    if (listed !== undefined) {
      const unique = new Set(listed.split('\0').filter((p) => p.length > 0));
      const commit = (await git(repo, ['rev-parse', '--verify', '-q', 'HEAD']))?.trim() || undefined;
      const status = commit ? await git(repo, ['status', '--porcelain', '--untracked-files=no']) : undefined;
      return { mode: 'git', paths: sortPaths([...unique]), prunedVendoredDirs: 0, commit, dirty: status === undefined ? undefined : status.trim().length > 0 };
    }
  }
  return walk(repo, opts);
}

/** gitignore files of one folder, compiled; patterns are relative to that folder as git reads them. */
interface IgnoreLevel {
  dir: string; // repo-relative, '' for the root
  ig: Ignore;
}

async function readIgnoreFile(file: string): Promise<string | undefined> {
  try {
    return await fs.readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Evaluates gitignore rules from the root down: a deeper file's negation re-includes what a parent excluded. */
export function ignoredBy(levels: readonly IgnoreLevel[], rel: string, isDir: boolean): boolean {
  let ignored = false;
  for (const level of levels) {
    const sub = level.dir === '' ? rel : rel.slice(level.dir.length + 1);
    const r = level.ig.test(isDir ? sub + '/' : sub);
    if (r.ignored) ignored = true;
    else if (r.unignored) ignored = false;
  }
  return ignored;
}

async function walk(repo: string, opts: { skipVendored: boolean }): Promise<Selection> {
  const vendored = new Set<string>(VENDORED_DIRS);
  const out: string[] = [];
  let pruned = 0;
  const rootIgnore = ignore();
  const exclude = await readIgnoreFile(path.join(repo, '.git', 'info', 'exclude'));
  if (exclude) rootIgnore.add(exclude);
  // Depth-first with an explicit stack: deep trees cannot overflow the call stack.
  const stack: { rel: string; levels: IgnoreLevel[] }[] = [{ rel: '', levels: [] }];
  while (stack.length > 0) {
    const { rel, levels: parentLevels } = stack.pop()!;
    const abs = rel === '' ? repo : path.join(repo, rel);
    let levels = parentLevels;
    const gi = await readIgnoreFile(path.join(abs, '.gitignore'));
    if (gi !== undefined || (rel === '' && exclude)) {
      const ig = rel === '' ? rootIgnore : ignore();
      if (gi) ig.add(gi);
      levels = [...parentLevels, { dir: rel, ig }];
    }
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fs.readdir(abs, { withFileTypes: true });
    } catch {
      continue; // an unreadable folder holds nothing we can use
    }
    for (const e of entries) {
      const childRel = rel === '' ? e.name : `${rel}/${e.name}`;
      const isDir = e.isDirectory();
      if (e.name === '.git') continue; // the repository's database (a folder, or a file in worktrees/submodules)
      if (ignoredBy(levels, childRel, isDir)) continue;
      if (isDir) {
        if (opts.skipVendored && vendored.has(e.name)) pruned++;
        else stack.push({ rel: childRel, levels });
      } else {
        out.push(childRel); // files, symlinks (never followed) and special files: the classifier decides
      }
    }
  }
  return { mode: 'walk', paths: sortPaths(out), prunedVendoredDirs: pruned };
}
