// Bad adapters and bad flags: each a one-line QtkError naming the file and the tensor or value.
import { promises as fs, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint } from '@qtk/convert';
import { QtkError, readGgufLora, SafetensorsWriter, writeGgufLora } from '@qtk/core';
import { Model } from '@qtk/engine';
import { generateFixture, generatePeftAdapter } from '@qtk/fixtures';
import { loraConvertMain, loraMergeMain, readPeftAdapter } from '../src/index.js';
import { FIXTURE_OPTS } from './adapter-fixture.js';

const quiet = () => {};
let root: string;
let qwen3Hf: string;
let qwen3Gguf: string;
let qwen3Peft: string;
let qwen35Hf: string;
let qwen35Peft: string;
let narrowHf: string;

/** A PEFT folder with the given tensors (name → [shape, values]) and config fields. */
async function rawPeft(dir: string, tensors: [string, number[]][], config: Record<string, unknown>): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  const w = await SafetensorsWriter.create(path.join(dir, 'adapter_model.safetensors'), tensors.map(([name, shape]) => ({ name, dtype: 'F32' as const, shape })));
  for (const [name, shape] of tensors) await w.write(name, new Uint8Array(4 * shape.reduce((a, b) => a * b, 1)));
  await w.finish();
  await fs.writeFile(path.join(dir, 'adapter_config.json'), JSON.stringify({ peft_type: 'LORA', r: 4, lora_alpha: 8, target_modules: ['q_proj'], ...config }));
  return dir;
}

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'qtk-adapter-errors-'));
  qwen3Hf = path.join(root, 'qwen3');
  await generateFixture({ ...FIXTURE_OPTS.qwen3, outDir: qwen3Hf });
  qwen3Gguf = path.join(root, 'qwen3.gguf');
  await convertCheckpoint({ input: qwen3Hf, output: qwen3Gguf, outtype: 'f32', log: quiet });
  qwen3Peft = (await generatePeftAdapter({ baseDir: qwen3Hf, outDir: path.join(root, 'qwen3-peft') })).dir;
  qwen35Hf = path.join(root, 'qwen35');
  await generateFixture({ ...FIXTURE_OPTS.qwen3_5, layers: 4, outDir: qwen35Hf });
  qwen35Peft = (await generatePeftAdapter({ baseDir: qwen35Hf, outDir: path.join(root, 'qwen35-peft') })).dir;
  narrowHf = path.join(root, 'qwen3-narrow');
  await generateFixture({ ...FIXTURE_OPTS.qwen3, hidden: 32, outDir: narrowHf });
}, 300_000);
afterAll(() => rmSync(root, { recursive: true, force: true }));

const out = (name: string) => path.join(root, name);

describe('bad adapters', () => {
  it('an adapter for another architecture names the first module the base lacks', async () => {
    await expect(loraConvertMain({ input: qwen35Peft, base: qwen3Hf, output: out('x1.gguf'), out: quiet }))
      .rejects.toThrow(/model\.language_model\.layers\.0\.linear_attn\.in_proj_qkv is not a LoRA target of the qwen3 base/);
  });

  it('a GGUF LoRA for another architecture is refused by the merge', async () => {
    const g = out('qwen35-adapter.gguf');
    await loraConvertMain({ input: qwen35Peft, base: qwen35Hf, output: g, out: quiet });
    await expect(loraMergeMain({ base: qwen3Gguf, adapters: [g], output: out('x2.gguf'), out: quiet }))
      .rejects.toThrow(/adapter is for architecture qwen35, the base .* is qwen3/);
  });

  it('a GGUF LoRA for another architecture is refused by the engine', async () => {
    const g = out('qwen35-adapter.gguf');
    const m = await Model.load(qwen3Gguf, { device: 'cpu', threads: 1 });
    try {
      await expect(m.applyLora([{ path: g }])).rejects.toThrow(/adapter for architecture qwen35, the model .* is qwen3/);
    } finally {
      m.free();
    }
  });

  it('an adapter for another hidden size names the module and both shapes', async () => {
    await expect(loraConvertMain({ input: qwen3Peft, base: narrowHf, output: out('x3.gguf'), out: quiet }))
      .rejects.toThrow(/model\.layers\.0\.self_attn\.q_proj: lora_A is \[8, 64\] and lora_B \[\d+, 8\], but the base weight blk\.0\.attn_q\.weight is \[\d+, 32\]/);
  });

  it('a GGUF LoRA adapting a tensor the base lacks names that tensor', async () => {
    const good = await readGgufLora(await (async () => {
      const g = out('qwen3-adapter.gguf');
      await loraConvertMain({ input: qwen3Peft, base: qwen3Hf, output: g, out: quiet });
      return g;
    })());
    const bad = out('missing-tensor.gguf');
    await writeGgufLora(bad, 'qwen3', [{ ...good.pairs[0]!, name: 'blk.7.attn_q.weight' }]);
    await expect(loraMergeMain({ base: qwen3Gguf, adapters: [bad], output: out('x4.gguf'), out: quiet }))
      .rejects.toThrow(/has no tensor blk\.7\.attn_q\.weight, which the adapter .* adapts/);
  });

  it('a rank mismatch between lora_A and lora_B names both tensors', async () => {
    const dir = await rawPeft(out('rank-mismatch'), [
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [4, 64]],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [256, 8]],
    ], {});
    await expect(readPeftAdapter(dir)).rejects.toThrow(/rank mismatch for model\.layers\.0\.self_attn\.q_proj: .*lora_A\.weight has rank 4 .*lora_B\.weight has rank 8/);
  });

  it('a rank other than the config\'s is refused, naming the tensor', async () => {
    const dir = await rawPeft(out('rank-config'), [
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [2, 64]],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [256, 2]],
    ], {});
    await expect(readPeftAdapter(dir)).rejects.toThrow(/q_proj\.lora_A\.weight has rank 2 but adapter_config\.json gives .* rank 4/);
  });

  it('a truncated adapter_model.safetensors is refused, naming the tensor past the end', async () => {
    const dir = out('truncated');
    await fs.cp(qwen3Peft, dir, { recursive: true });
    const file = path.join(dir, 'adapter_model.safetensors');
    const { size } = await fs.stat(file);
    await fs.truncate(file, size - 100);
    await expect(readPeftAdapter(dir)).rejects.toThrow(/adapter_model\.safetensors: tensor "base_model\.model\.model\.layers\.1\.mlp\.down_proj\.lora_B\.weight" has data_offsets .* past the end/);
  });

  it('a conv1d target is refused by name with the advice to merge', async () => {
    const dir = await rawPeft(out('conv1d'), [
      ['base_model.model.model.language_model.layers.0.linear_attn.conv1d.lora_A.weight', [4, 1, 4]],
      ['base_model.model.model.language_model.layers.0.linear_attn.conv1d.lora_B.weight', [112, 4, 1]],
    ], { target_modules: ['conv1d'] });
    await expect(readPeftAdapter(dir)).rejects.toThrow(/conv1d\.lora_A\.weight: llama\.cpp cannot apply LoRA to conv1d at run time\. Merge/);
  });

  it('DoRA adapters are refused by name', async () => {
    const dir = await rawPeft(out('dora'), [
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight', [4, 64]],
      ['base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight', [256, 4]],
    ], { use_dora: true });
    await expect(readPeftAdapter(dir)).rejects.toThrow(/use_dora is true/);
  });

  it('errors are QtkErrors (printed without a stack)', async () => {
    await expect(readPeftAdapter(out('does-not-exist'))).rejects.toBeInstanceOf(QtkError);
  });
});

describe('bad flags', () => {
  it('merge --scale outside [-100, 100] names the flag and the range', async () => {
    await expect(loraMergeMain({ base: qwen3Gguf, adapters: [qwen3Peft], output: out('x5.gguf'), scale: 1e6, out: quiet }))
      .rejects.toThrow(/--scale 1000000 is not a number in \[-100, 100\]/);
  });

  it('merge refuses an output that is its base', async () => {
    await expect(loraMergeMain({ base: qwen3Gguf, adapters: [qwen3Peft], output: qwen3Gguf, force: true, out: quiet }))
      .rejects.toThrow(/would overwrite the input/);
  });

  it('merge leaves an existing output alone without --force', async () => {
    const existing = out('existing.gguf');
    await fs.writeFile(existing, 'mine');
    await expect(loraMergeMain({ base: qwen3Gguf, adapters: [qwen3Peft], output: existing, out: quiet })).rejects.toThrow(/already exists/);
    expect(await fs.readFile(existing, 'utf8')).toBe('mine');
  });
});
