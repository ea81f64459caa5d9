// An output never replaces one of its inputs, whatever path spelling reaches it: the same file
// through a symlink or a hard link, or any file inside an input folder (a shard of an input
// checkpoint). Refused even with --force, because --force means "replace my old output", never
// "destroy what I am reading".
import { promises as fs, type Stats } from 'node:fs';
import * as path from 'node:path';
import { QtkError } from './errors.js';

export interface OutputGuardOptions {
  /** The flag that named the output, for the message (e.g. "--output"). */
  flag?: string;
  /** What the output is: a file (default; an existing folder there is refused) or a folder. */
  kind?: 'file' | 'dir';
  /**
   * Allow the output inside an input folder (default false). For a folder output whose writer
   * excludes it from its own walk, such as a dataset written under the repository it reads.
   */
  allowInsideInputDir?: boolean;
}

async function statOrNull(p: string): Promise<Stats | null> {
  return fs.stat(p).catch(() => null);
}

/** The real path of p even when p (or its last parts) does not exist yet. */
async function realPathOf(p: string): Promise<string> {
  const abs = path.resolve(p);
  const tail: string[] = [];
  let head = abs;
  for (;;) {
    try {
      const real = await fs.realpath(head);
      return tail.length === 0 ? real : path.join(real, ...tail.reverse());
    } catch {
      const parent = path.dirname(head);
      if (parent === head) return abs;
      tail.push(path.basename(head));
      head = parent;
    }
  }
}

function inside(child: string, dir: string): boolean {
  const rel = path.relative(dir, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/**
 * Throws a QtkError when `output` would replace or write into one of `inputs`. Inputs that do
 * not exist are ignored (their own readers report them).
 */
export async function assertOutputNotInput(output: string, inputs: readonly (string | undefined)[], opts: OutputGuardOptions = {}): Promise<void> {
  const label = opts.flag ? `${opts.flag} ${output}` : output;
  const outReal = await realPathOf(output);
  const outStat = await statOrNull(output);
  if (outStat?.isDirectory() && (opts.kind ?? 'file') === 'file') {
    throw new QtkError(`${label}: is a folder, and the output is a file. Name a file path, e.g. ${path.join(output, 'model.gguf')}.`, { file: output });
  }
  for (const input of inputs) {
    if (input === undefined) continue;
    const inStat = await statOrNull(input);
    if (!inStat) continue;
    const inReal = await fs.realpath(input);
    const same = outReal === inReal || (outStat !== null && outStat.dev === inStat.dev && outStat.ino === inStat.ino);
    if (same) {
      const how = path.resolve(output) === path.resolve(input) ? 'the same path' : outReal === inReal ? `the same file (${inReal})` : 'the same file (a hard link)';
      throw new QtkError(`${label}: is the input ${input} (${how}); writing it would destroy the input, even with --force. Choose another output path.`, { file: output });
    }
    if (inStat.isDirectory() && !opts.allowInsideInputDir && inside(outReal, inReal)) {
      throw new QtkError(`${label}: lies inside the input folder ${input}; writing there could replace a file being read, even with --force. Choose an output path outside ${input}.`, { file: output });
    }
  }
}
