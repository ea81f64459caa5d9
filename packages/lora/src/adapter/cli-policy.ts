// Flag checks and the output guard every adapter command uses, with @qtk/core's cli-args / output-guard
// signatures so the commands switch to those with an import change.
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError } from '@qtk/core';

export function numberArg(flag: string, value: unknown, range: { min?: number; max?: number } = {}): number | undefined {
  if (value === undefined) return undefined;
  const n = typeof value === 'number' ? value : Number(value);
  const lo = range.min ?? -Infinity;
  const hi = range.max ?? Infinity;
  if (!Number.isFinite(n) || n < lo || n > hi) {
    throw new QtkError(`${flag} ${JSON.stringify(value)} is not a number in [${lo}, ${hi}]. Pass a number in that range.`);
  }
  return n;
}

export function enumArg<const C extends string>(flag: string, value: unknown, choices: readonly C[]): C | undefined {
  if (value === undefined) return undefined;
  if (!choices.includes(value as C)) throw new QtkError(`${flag} ${JSON.stringify(value)} is not one of ${choices.join(', ')}. Pass one of them.`);
  return value as C;
}

async function real(p: string): Promise<string> {
  const abs = path.resolve(p);
  return fs.realpath(abs).catch(async () => path.join(await fs.realpath(path.dirname(abs)).catch(() => path.dirname(abs)), path.basename(abs)));
}

/** Refuses an output that is one of the inputs, or lies inside an input folder. */
export async function assertOutputNotInput(output: string, inputs: readonly string[], opts: { flag?: string } = {}): Promise<void> {
  const out = await real(output);
  for (const input of inputs) {
    const inp = await real(input);
    if (out === inp || out.startsWith(inp + path.sep)) {
      throw new QtkError(`${opts.flag ?? 'output'} ${output} would overwrite the input ${input}. Choose another output path.`, { file: output });
    }
  }
}
