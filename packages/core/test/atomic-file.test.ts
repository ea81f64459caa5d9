import { describe, it, expect } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openAtomic, QtkError, writeFileAtomic } from '../src/index.js';

describe('openAtomic', () => {
  it('writes under a temporary name and renames on commit', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-atomic-'));
    const target = path.join(dir, 'out.bin');
    const f = await openAtomic(target);
    await f.handle.write(Buffer.from('hello'));
    expect(await fs.readdir(dir)).toEqual([path.basename(f.tmpPath)]);
    await f.commit();
    expect(await fs.readFile(target, 'utf8')).toBe('hello');
    expect(await fs.readdir(dir)).toEqual(['out.bin']);
  });

  it('leaves nothing behind on abort and refuses to overwrite without overwrite=true', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-atomic-'));
    const target = path.join(dir, 'out.bin');
    await fs.writeFile(target, 'mine');
    await expect(openAtomic(target)).rejects.toThrow(QtkError);
    await expect(openAtomic(target)).rejects.toThrow(/already exists.*--force/);
    const f = await openAtomic(target, { overwrite: true });
    await f.handle.write(Buffer.from('partial'));
    await f.abort();
    expect(await fs.readdir(dir)).toEqual(['out.bin']);
    expect(await fs.readFile(target, 'utf8')).toBe('mine');
  });
});

describe('writeFileAtomic', () => {
  it('replaces a whole file and leaves no temporary name behind', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-atomic-'));
    const target = path.join(dir, 'report.json');
    await fs.writeFile(target, 'old');
    await writeFileAtomic(target, '{"new":true}\n');
    expect([await fs.readFile(target, 'utf8'), await fs.readdir(dir)]).toEqual(['{"new":true}\n', ['report.json']]);
  });
});
