// Fixture GGUFs for the engine tests: a seeded tiny HF checkpoint converted by @qtk/convert.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { convertCheckpoint } from '@qtk/convert';
import { generateFixture, type FixtureOptions } from '@qtk/fixtures';
import { GGML_TYPES, type GgmlTypeName, type GgufTensorInfo } from '@qtk/core';
import { ggmlQuantize, loadGgml } from '../src/index.js';

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

import { rewriteGguf } from '@qtk/fixtures/test-support';
export { maxAbsDiff, tokenIds } from '@qtk/fixtures/test-support';

/**
 * Writes a copy of an f32 GGUF with its 2-D weight matrices quantized by ggml itself to `type`
 * (norms, 1-D tensors, ssm_conv1d and rows that are not whole blocks stay as they are) —
 * the oracle's own quantizer, so the engine and llama.cpp read identical blocks.
 */
export async function requantizeGguf(src: string, dst: string, type: GgmlTypeName, only: (name: string) => boolean = () => true): Promise<void> {
  const lib = loadGgml('cpu');
  const quantize = (t: GgufTensorInfo) => only(t.name) && t.type === 'F32' && t.ne.length === 2 && !t.name.endsWith('_norm.weight') && !t.name.includes('ssm_conv1d') && t.ne[0]! % GGML_TYPES[type].blockSize === 0;
  await rewriteGguf(src, dst, (t) => ({ ne: [...t.ne], type: quantize(t) ? type : t.type }), (t, bytes) =>
    quantize(t) ? ggmlQuantize(lib, type, new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4), t.ne[0]!) : bytes);
}
