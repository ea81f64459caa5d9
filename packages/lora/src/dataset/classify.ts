// One file's verdict: kept (with its normalised text) or skipped with a reason. Path rules run first so
// most skips cost no read; content rules run on the decoded text. A secret is named by path and rule only.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import picomatch from 'picomatch';
import { decodeSource, looksBinaryPrefix } from './decode.js';
import { ignoredBy } from './select.js';
import {
  BINARY_EXTENSIONS, DATA_EXTENSIONS, GENERATED_MARKER, GENERATED_NAME_PATTERNS, LOCKFILES, MINIFIED_LIMITS,
  SECRET_FILE_PATTERNS, SECRET_TOKEN_PATTERNS, VENDORED_DIRS, type SkipReason,
} from './rules.js';

export type Verdict =
  | { keep: true; text: string; bytes: number }
  | { keep: false; reason: SkipReason; rule?: string };

export interface ClassifyOptions {
  include: readonly string[];
  exclude: readonly string[];
  maxFileBytes: number;
  skipVendored: boolean;
}

const vendored = new Set<string>(VENDORED_DIRS);
const lockfiles = new Set<string>(LOCKFILES);
const dataExt = new Set<string>(DATA_EXTENSIONS);
const binaryExt = new Set<string>(BINARY_EXTENSIONS);
const PREFIX_BYTES = 8192;

export class Classifier {
  private readonly includeMatch?: (p: string) => boolean;
  private readonly excludeMatch?: (p: string) => boolean;
  private readonly qtkIgnores = new Map<string, Ignore | null>();

  constructor(private readonly repo: string, private readonly opts: ClassifyOptions) {
    if (opts.include.length > 0) this.includeMatch = picomatch([...opts.include], { dot: true });
    if (opts.exclude.length > 0) this.excludeMatch = picomatch([...opts.exclude], { dot: true });
  }

  /** Rules that need only the path. */
  async byPath(rel: string): Promise<Exclude<Verdict, { keep: true }> | undefined> {
    if (this.includeMatch && !this.includeMatch(rel)) return { keep: false, reason: 'excluded', rule: '--include' };
    if (this.excludeMatch?.(rel)) return { keep: false, reason: 'excluded', rule: '--exclude' };
    if (await this.qtkIgnored(rel)) return { keep: false, reason: 'excluded', rule: '.qtkignore' };
    const base = path.posix.basename(rel);
    const lower = base.toLowerCase();
    for (const s of SECRET_FILE_PATTERNS) if (s.pattern.test(lower)) return { keep: false, reason: 'secret', rule: s.rule };
    if (this.opts.skipVendored) {
      const dirs = rel.split('/').slice(0, -1);
      if (dirs.some((d) => vendored.has(d))) return { keep: false, reason: 'vendored' };
    }
    if (lockfiles.has(base)) return { keep: false, reason: 'lockfile' };
    for (const g of GENERATED_NAME_PATTERNS) if (g.pattern.test(base)) return { keep: false, reason: g.reason };
    const ext = path.posix.extname(lower);
    if (dataExt.has(ext)) return { keep: false, reason: 'data-file' };
    if (binaryExt.has(ext)) return { keep: false, reason: 'binary' };
    return undefined;
  }

  /** Full verdict: path rules, then type and size, then content. */
  async classify(rel: string): Promise<Verdict> {
    const byPath = await this.byPath(rel);
    if (byPath) return byPath;
    const abs = path.join(this.repo, ...rel.split('/'));
    let st: import('node:fs').Stats;
    try {
      st = await fs.lstat(abs);
    } catch {
      return { keep: false, reason: 'not-a-file' };
    }
    if (st.isSymbolicLink()) return { keep: false, reason: 'symlink' };
    if (!st.isFile()) return { keep: false, reason: 'not-a-file' };
    let bytes: Uint8Array;
    try {
      if (st.size > this.opts.maxFileBytes) return { keep: false, reason: 'too-large' };
      bytes = await readWhole(abs, st.size);
    } catch {
      return { keep: false, reason: 'unreadable' };
    }
    return classifyContent(bytes);
  }

  private async qtkIgnored(rel: string): Promise<boolean> {
    const parts = rel.split('/');
    const levels: { dir: string; ig: Ignore }[] = [];
    for (let i = 0; i < parts.length; i++) {
      const dir = parts.slice(0, i).join('/');
      let ig = this.qtkIgnores.get(dir);
      if (ig === undefined) {
        const text = await fs.readFile(path.join(this.repo, dir, '.qtkignore'), 'utf8').catch(() => undefined);
        ig = text === undefined ? null : ignore().add(text);
        this.qtkIgnores.set(dir, ig);
      }
      if (ig) levels.push({ dir, ig });
    }
    return levels.length > 0 && ignoredBy(levels, rel, false);
  }
}

async function readWhole(abs: string, size: number): Promise<Uint8Array> {
  const fh = await fs.open(abs, 'r');
  try {
    // A binary prefix settles it without reading the rest (a 50 MB blob costs one 8 KiB read).
    const prefix = new Uint8Array(Math.min(size, PREFIX_BYTES));
    const { bytesRead } = await fh.read(prefix, 0, prefix.length, 0);
    if (looksBinaryPrefix(prefix.subarray(0, bytesRead))) return prefix.subarray(0, bytesRead);
    if (size <= PREFIX_BYTES) return prefix.subarray(0, bytesRead);
    const all = new Uint8Array(size);
    all.set(prefix.subarray(0, bytesRead));
    let at = bytesRead;
    while (at < size) {
      const r = await fh.read(all, at, size - at, at);
      if (r.bytesRead === 0) break; // the file shrank while we read it
      at += r.bytesRead;
    }
    return all.subarray(0, at);
  } finally {
    await fh.close();
  }
}

export function classifyContent(bytes: Uint8Array): Verdict {
  const decoded = decodeSource(bytes);
  if (!decoded.ok) return { keep: false, reason: decoded.reason };
  const text = decoded.text;
  for (const s of SECRET_TOKEN_PATTERNS) if (s.pattern.test(text)) return { keep: false, reason: 'secret', rule: s.rule };
  if (text.trim().length === 0) return { keep: false, reason: 'empty' };
  if (GENERATED_MARKER.test(text.slice(0, 2048))) return { keep: false, reason: 'generated' };
  if (isMinified(text)) return { keep: false, reason: 'minified' };
  return { keep: true, text, bytes: bytes.length };
}

/** Bundles and minified code: some very long line and long lines on average. */
export function isMinified(text: string): boolean {
  let maxLine = 0;
  let lines = 0;
  let start = 0;
  while (start <= text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    maxLine = Math.max(maxLine, end - start);
    lines++;
    start = end + 1;
  }
  return maxLine > MINIFIED_LIMITS.maxLineChars && text.length / lines > MINIFIED_LIMITS.meanLineChars;
}
