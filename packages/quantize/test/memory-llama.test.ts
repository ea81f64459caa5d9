// The memory model against what llama.cpp allocates: a converted qwen3_5 fixture (hybrid: 2 of 8 layers
// with a KV cache, 6 recurrent) loaded by node-llama-cpp at two context sizes and with two sequences;
// llama.cpp logs each buffer it allocates (output, KV, recurrent state, compute) and the model's size.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, alignUp, describeConfig, describeGguf, servingMemory, tensorBytes, type ModelDescription } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '@qtk/convert';
import { getLlama, LlamaLogLevel, type Llama, type LlamaModel } from 'node-llama-cpp';

let dir: string;
let gguf: string;
let llama: Llama;
let model: LlamaModel;
let described: ModelDescription;
const log: string[] = [];
let fromConfig: ModelDescription;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-memory-'));
  await generateFixture({ arch: 'qwen3_5', outDir: path.join(dir, 'hf'), hidden: 256 });
  gguf = path.join(dir, 'm-f16.gguf');
  await convertCheckpoint({ input: path.join(dir, 'hf'), output: gguf, outtype: 'f16', log: () => {} });
  const r = await GgufReader.open(gguf);
  try {
    described = describeGguf(gguf, r, r.tensors, r.dataOffset);
  } finally {
    await r.close();
  }
  llama = await getLlama({ gpu: false, logLevel: LlamaLogLevel.info, logger: (_level, message) => { log.push(message); } });
  model = await llama.loadModel({ modelPath: gguf });
  fromConfig = describeConfig(JSON.parse(await readFile(path.join(dir, 'hf', 'config.json'), 'utf8')), 'config.json');
}, 300_000);

afterAll(async () => {
  await model?.dispose();
  await rm(dir, { recursive: true, force: true });
});

/** MiB llama.cpp reports for each context buffer while creating a context. */
async function allocated(contextSize: number, sequences: number): Promise<Record<'output' | 'kv' | 'rs' | 'compute', number>> {
  log.length = 0;
  const ctx = await model.createContext({ contextSize, sequences, threads: 1 });
  await ctx.dispose();
  const mib = (re: RegExp): number => {
    const line = log.find((l) => re.test(l));
    if (!line) throw new Error(`llama.cpp printed no line matching ${re}:\n${log.join('\n')}`);
    return Number(/=\s*([\d.]+) MiB/.exec(line)![1]) * 1024 * 1024;
  };
  return { output: mib(/output buffer size/), kv: mib(/KV buffer size/), rs: mib(/RS buffer size/), compute: mib(/compute buffer size/) };
}

describe('serving memory of the qwen3_5 fixture vs llama.cpp', () => {
  it('config.json alone gives the tensor table qtk convert writes (names, shapes, types)', () => {
    const byName = (a: { name: string }, b: { name: string }) => (a.name < b.name ? -1 : 1);
    expect([...fromConfig.tensors].sort(byName)).toEqual(described.tensors.map((t) => ({ name: t.name, ne: t.ne, type: t.type })).sort(byName));
  });

  it('config.json alone gives the shape the GGUF header gives', () => {
    expect(fromConfig.shape).toEqual(described.shape);
  });

  it('weights: header + tensor bytes (aligned) equal the GGUF file size', async () => {
    const aligned = described.tensors.reduce((n, t) => n + alignUp(tensorBytes([t]), 32), 0);
    expect(described.headerBytes + aligned).toBe((await stat(gguf)).size);
  });

  it.each([[256, 1], [4096, 1], [4096, 2]])('context %i × %i sequence(s): KV + state + logits + compute within 10 percent of llama.cpp', async (ctx, seq) => {
    const got = await allocated(ctx, seq);
    const est = servingMemory(described.shape, 0, { ctx, parallel: seq, kvType: 'f16' });
    const llamaTotal = got.output + got.kv + got.rs + got.compute;
    expect(Math.abs(est.total / llamaTotal - 1)).toBeLessThan(0.1);
    // and each buffer that is not a rounding error on its own
    expect(Math.abs(est.kvCache / got.kv - 1)).toBeLessThan(0.1);
    expect(Math.abs(est.recurrentState / got.rs - 1)).toBeLessThan(0.1);
    expect(Math.abs(est.compute / got.compute - 1)).toBeLessThan(0.1);
  }, 120_000);
});
