// `qtk inspect` (inspectMain, as the CLI calls it) on a small GGUF, a safetensors file, a checkpoint
// folder, and on paths that are not models.
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GgufWriter, QtkError, SafetensorsWriter, inspectMain } from '../src/index.js';

let dir: string;
let ggufPath: string;
let stDir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-inspect-'));
  ggufPath = path.join(dir, 'tiny.gguf');
  const w = await GgufWriter.create(ggufPath);
  w.addString('general.architecture', 'qwen35');
  w.addUint32('qwen35.block_count', 2);
  w.addFloat32('qwen35.rope.freq_base', 10000000);
  w.addArray('tokenizer.ggml.tokens', 'STRING', Array.from({ length: 20 }, (_, i) => `tok${i}`));
  w.addString('tokenizer.chat_template', 'x'.repeat(500));
  w.addTensorInfo('token_embd.weight', [256, 4], 'Q4_K');
  w.addTensorInfo('output_norm.weight', [256], 'F32');
  await w.writeTensorData('token_embd.weight', new Uint8Array(576));
  await w.writeTensorData('output_norm.weight', new Uint8Array(1024));
  await w.finish();

  stDir = path.join(dir, 'hf');
  await fs.mkdir(stDir);
  const sw = await SafetensorsWriter.create(path.join(stDir, 'model.safetensors'), [
    { name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 8] },
    { name: 'model.norm.weight', dtype: 'F32', shape: [8] },
  ], { metadata: { format: 'pt' } });
  await sw.write('model.embed_tokens.weight', new Uint8Array(64));
  await sw.write('model.norm.weight', new Uint8Array(32));
  await sw.finish();
  await fs.writeFile(path.join(stDir, 'config.json'), JSON.stringify({ architectures: ['Qwen3_5ForConditionalGeneration'], model_type: 'qwen3_5', text_config: { model_type: 'qwen3_5_text' } }));
});
afterAll(async () => { await fs.rm(dir, { recursive: true, force: true }); });

async function run(p: string, flags: { json?: boolean; all?: boolean } = {}): Promise<string> {
  let text = '';
  await inspectMain({ path: p, json: flags.json ?? false, all: flags.all ?? false, out: { write: (s: string) => { text += s; } } });
  return text;
}

describe('qtk inspect', () => {
  it('prints a GGUF: header, metadata with long arrays abbreviated, tensors, totals', async () => {
    const text = await run(ggufPath);
    expect(text).toContain(`${ggufPath}: GGUF v3,`);
    expect(text).toContain('alignment 32');
    expect(text).toMatch(/general\.architecture\s+STRING\s+"qwen35"/);
    expect(text).toMatch(/qwen35\.block_count\s+UINT32\s+2/);
    expect(text).toMatch(/tokenizer\.ggml\.tokens\s+\[STRING; 20\]\s+\["tok0", "tok1", .*"tok7", … 12 more\]/);
    expect(text).not.toContain('tok8');
    expect(text).toMatch(/tokenizer\.chat_template\s+STRING\s+"x{120}"…/);
    expect(text).toMatch(/1\s+Q4_K\s+\[256, 4\]\s+576\s+token_embd\.weight/);
    expect(text).toMatch(/2\s+F32\s+\[256\]\s+1024\s+output_norm\.weight/);
    // (576 + 1024) bytes * 8 / 1280 weights = 10 bits per weight
    expect(text).toContain('Totals: 2 tensors, 1.3 K weights (1280), 1.6 KiB (1600 bytes), 10.00 bits per weight');
    const all = await run(ggufPath, { all: true });
    expect(all).toContain('"tok19"]');
    expect(all).toContain('x'.repeat(500));
  });

  it('--json prints one JSON object', async () => {
    const j = JSON.parse(await run(ggufPath, { json: true }));
    expect(j.format).toBe('gguf');
    expect(j.version).toBe(3);
    expect(j.tensors).toEqual([
      { name: 'token_embd.weight', type: 'Q4_K', ne: [256, 4], elements: 1024, offset: 0, bytes: 576 },
      { name: 'output_norm.weight', type: 'F32', ne: [256], elements: 256, offset: 576, bytes: 1024 },
    ]);
    const tokens = j.metadata.find((m: { key: string }) => m.key === 'tokenizer.ggml.tokens');
    expect(tokens).toMatchObject({ type: 'ARRAY', elemType: 'STRING', count: 20, abbreviated: true });
    expect(tokens.value).toHaveLength(8);
    expect(j.totals).toMatchObject({ tensors: 2, elements: 1280, bytes: 1600, bitsPerWeight: 10 });
    const full = JSON.parse(await run(ggufPath, { json: true, all: true }));
    expect(full.metadata.find((m: { key: string }) => m.key === 'tokenizer.ggml.tokens').value).toHaveLength(20);
  });

  it('prints a safetensors file and a checkpoint folder with config.json facts', async () => {
    for (const p of [stDir, path.join(stDir, 'model.safetensors')]) {
      const text = await run(p);
      expect(text).toContain(`${p}: safetensors, 1 file`);
      expect(text).toContain('config.json: architectures ["Qwen3_5ForConditionalGeneration"], model_type "qwen3_5", text_config.model_type "qwen3_5_text"');
      expect(text).toMatch(/1\s+BF16\s+\[4, 8\]\s+64\s+model\.embed_tokens\.weight/);
      expect(text).toMatch(/2\s+F32\s+\[8\]\s+32\s+model\.norm\.weight/);
      expect(text).toContain('Totals: 2 tensors, 40 weights (40), 96 B (96 bytes)');
    }
    const j = JSON.parse(await run(stDir, { json: true }));
    expect(j).toMatchObject({ format: 'safetensors', config: { model_type: 'qwen3_5' }, metadata: { format: 'pt' }, totals: { tensors: 2, bytes: 96 } });
    expect(j.tensors[0]).toEqual({ name: 'model.embed_tokens.weight', dtype: 'BF16', shape: [4, 8], bytes: 64, file: 'model.safetensors' });
  });

  it('prints a sharded checkpoint (index + two shards), naming each tensor\'s shard', async () => {
    const sharded = path.join(dir, 'sharded');
    await fs.mkdir(sharded);
    const shards = { 'model-00001-of-00002.safetensors': 'a.weight', 'model-00002-of-00002.safetensors': 'b.weight' };
    for (const [file, name] of Object.entries(shards)) {
      const sw = await SafetensorsWriter.create(path.join(sharded, file), [{ name, dtype: 'F16', shape: [2, 3] }]);
      await sw.write(name, new Uint8Array(12));
      await sw.finish();
    }
    await fs.writeFile(path.join(sharded, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 24 }, weight_map: { 'a.weight': 'model-00001-of-00002.safetensors', 'b.weight': 'model-00002-of-00002.safetensors' } }));
    const text = await run(sharded);
    expect(text).toContain(`${sharded}: safetensors, 2 files`);
    expect(text).not.toContain('config.json');
    expect(text).toMatch(/1\s+F16\s+\[2, 3\]\s+12\s+a\.weight  \(model-00001-of-00002\.safetensors\)/);
    expect(text).toMatch(/2\s+F16\s+\[2, 3\]\s+12\s+b\.weight  \(model-00002-of-00002\.safetensors\)/);
  });

  it('refuses paths that are not models, saying what it expected', async () => {
    const txt = path.join(dir, 'notes.txt');
    await fs.writeFile(txt, 'just some text, long enough to sniff');
    await expect(run(txt)).rejects.toThrow(QtkError);
    await expect(run(txt)).rejects.toThrow(/notes\.txt: is not a model file .*Give a \.gguf file, a \.safetensors file, or a folder with model\.safetensors or model\.safetensors\.index\.json/);
    const empty = path.join(dir, 'empty-folder');
    await fs.mkdir(empty);
    await fs.writeFile(path.join(empty, 'x.gguf'), 'GGUF');
    await expect(run(empty)).rejects.toThrow(/empty-folder: is a folder without safetensors weights .*it holds x\.gguf: inspect one of those\. Give a \.gguf file/);
    await expect(run(path.join(dir, 'missing.gguf'))).rejects.toThrow(/missing\.gguf: does not exist/);
    const fake = path.join(dir, 'fake.gguf');
    await fs.writeFile(fake, 'not really a gguf');
    await expect(run(fake)).rejects.toThrow(/fake\.gguf: is not a GGUF file/);
  });
});
