import { describe, it, expect } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { assertOutputNotInput, QtkError } from '../src/index.js';

async function tmp(): Promise<string> {
  return fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-guard-')));
}

describe('assertOutputNotInput refuses', () => {
  it('the same path', async () => {
    const d = await tmp();
    await fs.writeFile(path.join(d, 'm.gguf'), 'model');
    const out = path.join(d, 'm.gguf');
    await expect(assertOutputNotInput(out, [out], { flag: '--output' })).rejects.toThrow(QtkError);
    await expect(assertOutputNotInput(out, [out], { flag: '--output' })).rejects.toThrow(/^--output .*m\.gguf: is the input .*the same path.*even with --force/);
  });

  it('the target of a symlinked input', async () => {
    const d = await tmp();
    await fs.writeFile(path.join(d, 'm-f16.gguf'), 'model');
    await fs.symlink('m-f16.gguf', path.join(d, 'link.gguf'));
    await expect(assertOutputNotInput(path.join(d, 'm-f16.gguf'), [path.join(d, 'link.gguf')])).rejects.toThrow(/is the input .*link\.gguf \(the same file/);
  });

  it('a symlink output pointing at the input', async () => {
    const d = await tmp();
    await fs.writeFile(path.join(d, 'm.gguf'), 'model');
    await fs.symlink(path.join(d, 'm.gguf'), path.join(d, 'out.gguf'));
    await expect(assertOutputNotInput(path.join(d, 'out.gguf'), [path.join(d, 'm.gguf')])).rejects.toThrow(/is the input/);
  });

  it('a hard link to the input', async () => {
    const d = await tmp();
    await fs.writeFile(path.join(d, 'm.gguf'), 'model');
    await fs.link(path.join(d, 'm.gguf'), path.join(d, 'hard.gguf'));
    await expect(assertOutputNotInput(path.join(d, 'hard.gguf'), [path.join(d, 'm.gguf')])).rejects.toThrow(/\(the same file \(a hard link\)\)/);
  });

  it('a file inside an input folder, existing or not, and through a symlinked folder', async () => {
    const d = await tmp();
    const hf = path.join(d, 'hf');
    await fs.mkdir(path.join(hf, 'sub'), { recursive: true });
    await fs.writeFile(path.join(hf, 'model-00001-of-00002.safetensors'), 'shard');
    await fs.symlink(hf, path.join(d, 'alias'));
    for (const out of [path.join(hf, 'model-00001-of-00002.safetensors'), path.join(hf, 'new.gguf'), path.join(hf, 'sub', 'deeper', 'x.gguf'), path.join(d, 'alias', 'x.gguf')]) {
      await expect(assertOutputNotInput(out, [hf], { flag: '-o' })).rejects.toThrow(/lies inside the input folder/);
    }
  });

  it('an existing folder as a file output', async () => {
    const d = await tmp();
    await fs.mkdir(path.join(d, 'out'));
    await expect(assertOutputNotInput(path.join(d, 'out'), [])).rejects.toThrow(/is a folder, and the output is a file/);
  });

  it('the input folder itself as a folder output', async () => {
    const d = await tmp();
    await expect(assertOutputNotInput(d, [d], { kind: 'dir' })).rejects.toThrow(/is the input/);
  });
});

describe('assertOutputNotInput allows', () => {
  it('a new file beside the input, and a folder whose name starts like the input folder', async () => {
    const d = await tmp();
    await fs.mkdir(path.join(d, 'hf'));
    await fs.writeFile(path.join(d, 'm.gguf'), 'model');
    await expect(assertOutputNotInput(path.join(d, 'q.gguf'), [path.join(d, 'm.gguf'), path.join(d, 'hf')])).resolves.toBeUndefined();
    await expect(assertOutputNotInput(path.join(d, 'hf2', 'q.gguf'), [path.join(d, 'hf')])).resolves.toBeUndefined();
  });

  it('an existing distinct output (--force then replaces it), inputs that do not exist, and undefined inputs', async () => {
    const d = await tmp();
    await fs.writeFile(path.join(d, 'm.gguf'), 'model');
    await fs.writeFile(path.join(d, 'q.gguf'), 'old output');
    await expect(assertOutputNotInput(path.join(d, 'q.gguf'), [path.join(d, 'm.gguf'), path.join(d, 'missing'), undefined])).resolves.toBeUndefined();
  });

  it('a folder output inside an input folder when the writer excludes it from its walk', async () => {
    const d = await tmp();
    await expect(assertOutputNotInput(path.join(d, 'datasets', 'x'), [d], { kind: 'dir', allowInsideInputDir: true })).resolves.toBeUndefined();
  });
});
