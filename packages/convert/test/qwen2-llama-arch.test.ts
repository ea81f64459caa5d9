// The qwen2 and llama tables on one set of weights: a plain decoder with q/k/v biases, saved once as a
// Qwen2ForCausalLM and once as a LlamaForCausalLM checkpoint. llama.cpp runs the first with NEOX RoPE
// on the weights as stored and the second with normal RoPE on the Q/K rows (and biases) the llama table
// un-permutes — so the two GGUFs can only give the same distribution if that permutation is right.
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeFromF32, GgufReader, SafetensorsCheckpoint, SafetensorsWriter, type SafetensorsWriterTensor } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { convertCheckpoint } from '../src/index.js';
import { runGguf } from './llama-helpers.js';

let root: string;
let src: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-convert-q2llama-'));
  ({ dir: src } = await generateFixture({ arch: 'qwen3', outDir: path.join(root, 'qwen3'), seed: 21, layers: 2, headDim: 16 }));  // llama.cpp's qwen2 needs heads × head_dim = hidden
});
afterAll(async () => {
  if (root) await fs.rm(root, { recursive: true, force: true });
});

/** Writes `dir` as a plain-decoder checkpoint of the qwen3 fixture's weights: no q/k norms, seeded q/k/v biases. */
async function derive(dir: string, arch: 'Qwen2ForCausalLM' | 'LlamaForCausalLM'): Promise<string> {
  await fs.mkdir(dir, { recursive: true });
  for (const f of ['tokenizer.json', 'tokenizer_config.json']) await fs.copyFile(path.join(src, f), path.join(dir, f));
  const cfg = JSON.parse(await fs.readFile(path.join(src, 'config.json'), 'utf8'));
  cfg.architectures = [arch];
  cfg.model_type = arch === 'LlamaForCausalLM' ? 'llama' : 'qwen2';
  if (arch === 'LlamaForCausalLM') cfg.attention_bias = true;
  await fs.writeFile(path.join(dir, 'config.json'), JSON.stringify(cfg));

  const ck = await SafetensorsCheckpoint.open(src);
  const keep = ck.names().filter((n) => !/self_attn\.[qk]_norm\.weight$/.test(n));
  const biases: { name: string; values: Float32Array }[] = [];
  for (let l = 0; l < cfg.num_hidden_layers; l++) {
    for (const p of ['q', 'k', 'v'] as const) {
      const rows = ck.info(`model.layers.${l}.self_attn.${p}_proj.weight`).shape[0]!;
      biases.push({ name: `model.layers.${l}.self_attn.${p}_proj.bias`, values: Float32Array.from({ length: rows }, (_, i) => 0.3 * Math.sin(i * 0.7 + l + p.charCodeAt(0))) });
    }
    // Llama with attention_bias also has an o_proj bias; zero, as Qwen2 has none.
    if (arch === 'LlamaForCausalLM') biases.push({ name: `model.layers.${l}.self_attn.o_proj.bias`, values: new Float32Array(cfg.hidden_size) });
  }
  const specs: SafetensorsWriterTensor[] = [
    ...keep.map((n) => ({ name: n, dtype: ck.info(n).dtype, shape: ck.info(n).shape })),
    ...biases.map((b) => ({ name: b.name, dtype: 'F32' as const, shape: [b.values.length] })),
  ];
  const w = await SafetensorsWriter.create(path.join(dir, 'model.safetensors'), specs);
  for (const n of keep) await w.write(n, await ck.read(n));
  for (const b of biases) await w.write(b.name, encodeFromF32(b.values, 'F32'));
  await w.finish();
  await ck.close();
  return dir;
}

describe('qwen2 and llama tables', () => {
  it('load in llama.cpp and agree on the same weights (llama\'s Q/K un-permute is right)', async () => {
    const q2 = await convertCheckpoint({ input: await derive(path.join(root, 'q2'), 'Qwen2ForCausalLM'), output: path.join(root, 'q2.gguf'), outtype: 'f32', log: () => {} });
    const ll = await convertCheckpoint({ input: await derive(path.join(root, 'll'), 'LlamaForCausalLM'), output: path.join(root, 'll.gguf'), outtype: 'f32', log: () => {} });
    const g = await GgufReader.open(ll.output);
    expect(g.get('general.architecture')).toBe('llama');
    expect(g.get('llama.rope.dimension_count')).toBe(16);
    expect(g.get('llama.vocab_size')).toBe(151936);
    expect(g.hasTensor('blk.0.attn_q.bias')).toBe(true);
    await g.close();

    const tokens = [9707, 11, 1879, 0, 220, 16, 17, 18, 151644, 872, 198];
    const a = await runGguf(q2.output, tokens, 151936, { generateFrom: 'Hi' });
    const b = await runGguf(ll.output, tokens, 151936, { generateFrom: 'Hi' });
    expect(a.generated.length).toBeGreaterThan(0);
    expect(b.generated).toBe(a.generated);
    let max = 0;
    a.logProbs.forEach((lp, t) => { for (let i = 0; i < lp.length; i++) max = Math.max(max, Math.abs(lp[i]! - b.logProbs[t]![i]!)); });
    console.log(`qwen2 vs llama GGUF of the same weights: max |Δ log p| = ${max.toFixed(5)}`);
    // Same f32 weights, same math up to the RoPE kernel variant and summation order.
    expect(max).toBeLessThan(0.01);
  });
});
