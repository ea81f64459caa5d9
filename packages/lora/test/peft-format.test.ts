// PEFT config semantics (pattern keys, scales) and the GGUF alpha when scales differ (rsLoRA, mixed ranks).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufLora } from '@qtk/core';
import { generateFixture, generatePeftAdapter } from '@qtk/fixtures';
import { loraConvertMain, loraDelta, moduleRankAlpha, parsePeftConfig, patternKey, readPeftAdapter } from '../src/index.js';

describe('adapter_config.json', () => {
  const cfg = parsePeftConfig('adapter_config.json', {
    peft_type: 'LORA', r: 8, lora_alpha: 16, target_modules: ['q_proj', 'in_proj_a'],
    rank_pattern: { in_proj_a: 4, 'layers\\.3\\.self_attn\\.q_proj': 2 }, alpha_pattern: { q_proj: 32 },
  });

  it('pattern keys match the end of the module path at a dot boundary', () => {
    expect([
      patternKey(['in_proj_a'], 'model.layers.0.linear_attn.in_proj_a'),
      patternKey(['proj_a'], 'model.layers.0.linear_attn.in_proj_a'),
      patternKey(['layers\\.3\\.self_attn\\.q_proj'], 'model.layers.13.self_attn.q_proj'),
    ]).toEqual(['in_proj_a', undefined, undefined]);
  });

  it('rank_pattern and alpha_pattern override r and lora_alpha per module', () => {
    expect([
      moduleRankAlpha(cfg, 'model.layers.0.linear_attn.in_proj_a'),
      moduleRankAlpha(cfg, 'model.layers.3.self_attn.q_proj'),
      moduleRankAlpha(cfg, 'model.layers.1.mlp.up_proj'),
    ]).toEqual([{ rank: 4, alpha: 16 }, { rank: 2, alpha: 32 }, { rank: 8, alpha: 16 }]);
  });

  it('a non-positive r is refused naming the field', () => {
    expect(() => parsePeftConfig('x/adapter_config.json', { peft_type: 'LORA', r: 0, target_modules: ['q_proj'] })).toThrow(/x\/adapter_config\.json: r is 0, expected a positive number/);
  });
});

describe('rsLoRA with two ranks in one GGUF', () => {
  let root: string;
  let peft: string;
  let gguf: string;
  beforeAll(async () => {
    root = mkdtempSync(path.join(tmpdir(), 'qtk-rslora-'));
    const hf = (await generateFixture({ arch: 'qwen3_5', layers: 4, outDir: path.join(root, 'hf'), seed: 2 })).dir;
    peft = (await generatePeftAdapter({ baseDir: hf, outDir: path.join(root, 'peft'), useRslora: true, loraAlpha: 8 })).dir;
    gguf = path.join(root, 'a.gguf');
    await loraConvertMain({ input: peft, base: hf, output: gguf, out: () => {} });
    await loraConvertMain({ input: gguf, base: hf, output: path.join(root, 'back'), out: () => {} });
  }, 120_000);
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('adapter.lora.alpha is lora_alpha·√r of the common rank (llama.cpp divides by r)', async () => {
    expect((await readGgufLora(gguf)).alpha).toBe(Math.fround(8 * Math.sqrt(8)));
  });

  it('every module keeps its delta scale·B·A through GGUF and back (rank-4 pairs carry the ratio in B)', async () => {
    const [a, b] = [await readPeftAdapter(peft), await readPeftAdapter(path.join(root, 'back'))];
    const back = new Map(b.modules.map((m) => [m.name, m]));
    let worst = 0;
    for (const m of a.modules) {
      const d0 = loraDelta(m);
      const d1 = loraDelta(back.get(m.name)!);
      for (let i = 0; i < d0.length; i++) worst = Math.max(worst, Math.abs(d0[i]! - d1[i]!) / (Math.abs(d0[i]!) + 1e-3));
    }
    expect({ modules: b.modules.length, worst: worst < 1e-5 }).toEqual({ modules: a.modules.length, worst: true });
  });
});
