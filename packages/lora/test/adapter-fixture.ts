// Test fixtures for adapters: a tiny seeded checkpoint, its f32 GGUF, a seeded PEFT adapter for it, and
// the oracle merge done in Hugging Face space (W + s·scale·B·A on the original tensors, written as f32).
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { convertCheckpoint } from '@qtk/convert';
import { encodeFromF32, SafetensorsCheckpoint, SafetensorsWriter } from '@qtk/core';
import { generateFixture, generatePeftAdapter, type FixtureOptions } from '@qtk/fixtures';
import { addScaledDelta, loraDelta, readPeftAdapter } from '../src/index.js';

export interface AdapterFixture {
  root: string;
  hfDir: string;
  gguf: string;
  peftDir: string;
  cleanup(): void;
}

export const FIXTURE_OPTS = {
  qwen3_5: { arch: 'qwen3_5', layers: 4, seed: 11 },
  qwen3: { arch: 'qwen3', layers: 2, seed: 12 },
} as const satisfies Record<string, Omit<FixtureOptions, 'outDir'>>;

export async function adapterFixture(arch: keyof typeof FIXTURE_OPTS, outtype: 'f32' | 'f16' = 'f32'): Promise<AdapterFixture> {
  const root = mkdtempSync(path.join(tmpdir(), `qtk-adapter-${arch}-`));
  const hfDir = path.join(root, 'hf');
  await generateFixture({ ...FIXTURE_OPTS[arch], outDir: hfDir });
  const gguf = path.join(root, `base-${outtype}.gguf`);
  await convertCheckpoint({ input: hfDir, output: gguf, outtype, log: () => {} });
  const peftDir = path.join(root, 'peft');
  await generatePeftAdapter({ baseDir: hfDir, outDir: peftDir, seed: 5 });
  return { root, hfDir, gguf, peftDir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** The HF checkpoint with the PEFT adapter merged in HF space (adapted weights as f32), beside its config and tokenizer. */
export async function mergeInHfSpace(hfDir: string, peftDir: string, outDir: string, s = 1): Promise<void> {
  const peft = await readPeftAdapter(peftDir);
  const byWeight = new Map(peft.modules.map((m) => [`${m.name}.weight`, m]));
  const ck = await SafetensorsCheckpoint.open(hfDir);
  await fs.mkdir(outDir, { recursive: true });
  for (const f of await fs.readdir(hfDir)) {
    if (!f.endsWith('.safetensors') && !f.endsWith('.index.json')) await fs.copyFile(path.join(hfDir, f), path.join(outDir, f));
  }
  const names = ck.names();
  for (const n of byWeight.keys()) if (!ck.has(n)) throw new Error(`adapter module ${n} has no base weight`);
  const specs = names.map((n) => ({ name: n, dtype: byWeight.has(n) ? ('F32' as const) : ck.info(n).dtype, shape: ck.info(n).shape }));
  const w = await SafetensorsWriter.create(path.join(outDir, 'model.safetensors'), specs);
  try {
    for (const n of names) {
      const m = byWeight.get(n);
      if (!m) {
        await w.write(n, await ck.read(n));
        continue;
      }
      const values = await ck.readF32(n);
      addScaledDelta(values, loraDelta(m), s);
      await w.write(n, encodeFromF32(values, 'F32'));
    }
    await w.finish();
  } finally {
    await ck.close();
  }
}

export { maxAbsDiff, tokenIds } from '@qtk/fixtures/test-support';
