// `qtk export hf`: the merged GGUF back to a Hugging Face checkpoint. Checked against the original
// checkpoint (names, shapes, values) and by converting the export again (bit for bit in f32).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '@qtk/convert';
import { GgufReader, SafetensorsCheckpoint } from '@qtk/core';
import { exportHf, loraMergeMain } from '../src/index.js';
import { adapterFixture, type AdapterFixture } from './adapter-fixture.js';

const quiet = () => {};

async function differingTensors(a: string, b: string): Promise<string[]> {
  const [x, y] = await Promise.all([GgufReader.open(a), GgufReader.open(b)]);
  try {
    const out: string[] = [];
    for (const t of x.tensors) {
      if (!y.hasTensor(t.name)) { out.push(`${t.name} (missing)`); continue; }
      if (Buffer.compare(Buffer.from(await x.readTensor(t)), Buffer.from(await y.readTensor(y.tensor(t.name)))) !== 0) out.push(t.name);
    }
    if (y.tensors.length !== x.tensors.length) out.push(`tensor count ${x.tensors.length} vs ${y.tensors.length}`);
    return out;
  } finally {
    await x.close();
    await y.close();
  }
}

describe.each(['qwen3_5', 'qwen3'] as const)('%s: export hf', (arch) => {
  let fx: AdapterFixture;
  let merged: string;
  beforeAll(async () => {
    fx = await adapterFixture(arch);
    merged = path.join(fx.root, 'merged.gguf');
    await loraMergeMain({ base: fx.gguf, adapters: [fx.peftDir], output: merged, out: quiet });
  }, 300_000);
  afterAll(() => fx?.cleanup());

  it('export of the merged GGUF, converted again, equals the merged GGUF bit for bit', async () => {
    const dir = path.join(fx.root, 'export-merged');
    await exportHf({ gguf: merged, hf: fx.hfDir, output: dir, maxShardBytes: 8 << 20 });
    const again = path.join(fx.root, 'export-merged.gguf');
    await convertCheckpoint({ input: dir, output: again, outtype: 'f32', log: quiet });
    expect(await differingTensors(merged, again)).toEqual([]);
  }, 120_000);

  it('export with --lora from the base equals the merged GGUF after convert', async () => {
    const dir = path.join(fx.root, 'export-lora');
    await exportHf({ gguf: fx.gguf, hf: fx.hfDir, output: dir, adapters: [{ path: fx.peftDir }] });
    const again = path.join(fx.root, 'export-lora.gguf');
    await convertCheckpoint({ input: dir, output: again, outtype: 'f32', log: quiet });
    expect(await differingTensors(merged, again)).toEqual([]);
  }, 120_000);

  it('export of the plain base gives the original tensors: same names, shapes and values (A_log to 1 ulp)', async () => {
    const dir = path.join(fx.root, 'export-base');
    await exportHf({ gguf: fx.gguf, hf: fx.hfDir, output: dir, maxShardBytes: 8 << 20 });
    const [orig, exp] = await Promise.all([SafetensorsCheckpoint.open(fx.hfDir), SafetensorsCheckpoint.open(dir)]);
    try {
      expect(exp.names().sort()).toEqual(orig.names().sort());
      const bad: string[] = [];
      for (const n of orig.names()) {
        if (JSON.stringify(exp.info(n).shape) !== JSON.stringify(orig.info(n).shape)) { bad.push(`${n} shape`); continue; }
        const [a, b] = [await orig.readF32(n), await exp.readF32(n)];
        const tol = n.endsWith('A_log') ? 3e-7 : 0;
        for (let i = 0; i < a.length; i++) if (Math.abs(a[i]! - b[i]!) > tol * Math.abs(a[i]!)) { bad.push(`${n}[${i}] ${a[i]} vs ${b[i]}`); break; }
      }
      expect(bad).toEqual([]);
    } finally {
      await orig.close();
      await exp.close();
    }
  }, 120_000);

  it('writes shards with an index and the original config and tokenizer files', async () => {
    const dir = path.join(fx.root, 'export-base');
    const index = JSON.parse(await fs.readFile(path.join(dir, 'model.safetensors.index.json'), 'utf8')) as { weight_map: Record<string, string> };
    const shards = new Set(Object.values(index.weight_map));
    expect({ shards: shards.size > 1, config: await fs.readFile(path.join(dir, 'config.json'), 'utf8').then((s) => JSON.parse(s).model_type), tokenizer: await fs.stat(path.join(dir, 'tokenizer.json')).then(() => true) })
      .toEqual({ shards: true, config: arch, tokenizer: true });
  });
});
