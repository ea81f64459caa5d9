// Fixture GGUFs for the engine tests: a seeded tiny HF checkpoint converted by @qtk/convert.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { convertCheckpoint } from '@qtk/convert';
import { generateFixture, type FixtureOptions } from '@qtk/fixtures';

export interface FixtureGguf {
  hfDir: string;
  gguf: string;
  cleanup(): void;
}

export async function fixtureGguf(opts: Omit<FixtureOptions, 'outDir'>, outtype: 'f32' | 'f16' | 'bf16' | 'q8_0' = 'f32'): Promise<FixtureGguf> {
  const root = mkdtempSync(path.join(tmpdir(), 'qtk-engine-'));
  const hfDir = path.join(root, 'hf');
  await generateFixture({ ...opts, outDir: hfDir });
  const gguf = path.join(root, `model-${outtype}.gguf`);
  await convertCheckpoint({ input: hfDir, output: gguf, outtype, log: () => {} });
  return { hfDir, gguf, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export async function convertTo(hfDir: string, outtype: 'f32' | 'f16' | 'bf16' | 'q8_0'): Promise<string> {
  const gguf = path.join(path.dirname(hfDir), `model-${outtype}.gguf`);
  await convertCheckpoint({ input: hfDir, output: gguf, outtype, log: () => {} });
  return gguf;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Seeded token ids inside the tokenizer's ordinary range. */
export function tokenIds(n: number, seed = 7, vocab = 151000): number[] {
  let s = seed >>> 0;
  return Array.from({ length: n }, () => ((s = (s * 1664525 + 1013904223) >>> 0) % vocab));
}
