// qtk plan: the table for Qwen3.6-27B from its config.json, and the inputs it refuses.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { QWEN3_6_27B_CONFIG } from '@qtk/fixtures';
import { planMain } from '../src/plan/plan-main.js';
import { writeModel } from './gguf-helpers.js';
import { qwen35Layout } from './layouts.js';

const GIB = 1024 ** 3;
let dir: string;
const quiet = () => {};

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'qtk-plan-'));
  await writeFile(path.join(dir, 'config.json'), JSON.stringify(QWEN3_6_27B_CONFIG));
});
afterAll(async () => { await rm(dir, { recursive: true, force: true }); });

describe('qtk plan for Qwen3.6-27B', () => {
  const opts = { ctx: 32768, parallel: 1, kvType: 'f16' as const, headroom: GIB, out: quiet };

  it('24 GiB at 32k context: Q8_0 does not fit, the recommendation is the largest preset that does', async () => {
    const p = await planMain({ input: dir, vram: 24 * GIB, ...opts });
    expect(p.rows.find((r) => r.preset === 'Q8_0')!.fits).toBe(false);
    const fitting = p.rows.filter((r) => r.fits);
    expect(p.recommended).toBe(fitting.sort((a, b) => b.fileBytes - a.fileBytes)[0]!.preset);
  });

  it('counts the KV cache of the 16 attention layers only: 2 GiB at 32k in f16', async () => {
    const p = await planMain({ input: path.join(dir, 'config.json'), vram: 24 * GIB, ...opts });
    expect(p.rows[0]!.serving.kvCache).toBe(16 * 32768 * 2 * 4 * 256 * 2);
  });

  it('8 GiB: nothing fits, and --json says so with a null recommendation', async () => {
    const lines: string[] = [];
    await planMain({ input: dir, vram: 8 * GIB, ...opts, json: true, out: (l) => lines.push(l) });
    expect(JSON.parse(lines.join('\n')).recommended).toBeNull();
  });
});

describe('qtk plan refuses', () => {
  it('a config of an unknown architecture, listing the known ones', async () => {
    const f = path.join(dir, 'mamba.json');
    await writeFile(f, JSON.stringify({ architectures: ['MambaForCausalLM'], model_type: 'mamba' }));
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet }))
      .rejects.toThrow(/MambaForCausalLM.*is not supported.*qwen3_5 \(Qwen3_5ForConditionalGeneration/);
  });

  it('a GGUF without the needed metadata, naming the key', async () => {
    const f = path.join(dir, 'bare.gguf');
    await writeModel(f, 'qwen35', { block_count: 5 }, qwen35Layout({ layers: 4, mtp: true, hidden: 256, ffn: 256, vocab: 32, nHead: 2, nHeadKv: 1, headDim: 64, nVHead: 4, nKHead: 2, vHeadDim: 32, kHeadDim: 32 }));
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet })).rejects.toThrow(/qwen35\.embedding_length is missing/);
  });

  it('a GGUF of an architecture the memory model does not know, listing the known', async () => {
    const f = path.join(dir, 'gpt2.gguf');
    await writeModel(f, 'gpt2', { block_count: 1 }, [{ name: 'token_embd.weight', ne: [32, 8], type: 'F16' }]);
    await expect(planMain({ input: f, vram: GIB, ctx: 1024, parallel: 1, kvType: 'f16', headroom: 0, out: quiet })).rejects.toThrow(/"gpt2" is not supported.*qwen35, qwen3, qwen2, llama/);
  });
});
