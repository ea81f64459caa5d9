// `qtk dataset build` through the real yargs command table entry (the same wiring packages/cli/src/main.ts does).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import yargs from 'yargs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { qwen3TokenizerPaths } from '@qtk/fixtures';
import type { Argv } from 'yargs';
import { codeText } from './dataset-fixture.js';

let root: string;
// The CLI package depends on this one, so its command is loaded by path (outside this package's tsc rootDir).
const COMMAND_FILE = new URL('../../cli/src/commands/dataset.ts', import.meta.url).href;
let datasetCommand: { command: string; describe: string; builder: (y: Argv) => Argv; run: (a: Record<string, unknown>) => Promise<void> };

async function cli(argv: string[]): Promise<string> {
  const out: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  process.stdout.write = ((c: string | Uint8Array) => { out.push(String(c)); return true; }) as typeof process.stdout.write;
  try {
    await yargs(argv)
      .strict()
      .exitProcess(false)
      .fail((msg, err) => { throw err ?? new Error(msg); })
      .command(datasetCommand.command, datasetCommand.describe, datasetCommand.builder, (a) => datasetCommand.run(a as Record<string, unknown>))
      .parseAsync();
  } finally {
    process.stdout.write = write;
  }
  return out.join('');
}

beforeAll(async () => {
  ({ datasetCommand } = await import(/* @vite-ignore */ COMMAND_FILE));
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-dataset-cli-'));
  const repo = path.join(root, 'myrepo');
  await fs.mkdir(path.join(repo, 'src'), { recursive: true });
  await fs.writeFile(path.join(repo, 'src/a.ts'), codeText('one', 30));
  await fs.writeFile(path.join(repo, 'src/b.py'), 'def main():\n    return 42\n');
  await fs.writeFile(path.join(repo, 'src/big.ts'), codeText('two', 400)); // ~40 KB
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('qtk dataset build (CLI)', () => {
  it('parses the options, builds, and prints the summary table', async () => {
    const out = path.join(root, 'datasets');
    const text = await cli(['dataset', 'build', path.join(root, 'myrepo'), '--tokenizer', qwen3TokenizerPaths().tokenizerJson,
      '--out', out, '--seq-len', '128', '--eval-fraction', '0', '--max-file-size', '16k', '--seed', '5']);
    if (process.env.QTK_SHOW) console.log(text);
    const manifest = JSON.parse(await fs.readFile(path.join(out, 'myrepo', 'manifest.json'), 'utf8'));
    expect(manifest.seqLen).toBe(128);
    expect(manifest.seed).toBe(5);
    expect(manifest.filters.maxFileBytes).toBe(16 * 1024);
    expect(manifest.files.kept).toBe(2);
    expect(manifest.files.skipped['too-large']).toBe(1);
    expect(manifest.splits.eval.rows).toBe(0);
    expect(text).toMatch(/skipped: too-large\s+1/);
    expect(text).toMatch(/\.ts\s+1\s+[\d,]+/);
    expect(text).toMatch(/train\s+2\s+/);
    // --eval-fraction 0 held out nothing: the summary says eval is empty and what to do
    expect(text).toMatch(/warning: the eval split is empty: none of the 2 kept file\(s\) was held out at --eval-fraction 0\..*--split train.*larger --eval-fraction/);
    expect(text).not.toMatch(/train split is empty/);
  });

  it('rejects an unknown action and a malformed size', async () => {
    await expect(cli(['dataset', 'frob', 'x'])).rejects.toThrow(/Unknown argument|frob/);
    await expect(cli(['dataset', 'build', root, '--tokenizer', 'x', '--max-file-size', 'lots'])).rejects.toThrow(/--max-file-size: got "lots"; allowed: a size/);
  });
});
