// `qtk lora train` end to end on a tiny model and a real repository (this package's dataset builder):
// the eval loss ends below the base model's, the run folder holds every output, the PEFT adapter follows PEFT's
// layout, and llama.cpp (node-llama-cpp) loads adapter.gguf and it changes the eval text's scores. (Whether six
// steps lower the loss of one 32-token slice depends on the repository's content, so the loss drop is asserted on
// the whole eval split, by the trainer's own evaluation, above.)
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readGgufLora, SafetensorsFile } from '@qtk/core';
import { loraTrainMain, readTrainRows, RUN_FILES, type TrainRunSummary } from '../src/index.js';
import OpenAI from 'openai';
import { startServer } from '@qtk/serve';
import { llamaLogProbs } from '@qtk/fixtures/llama-oracle';
import { TRAIN_REPO, trainFixtureGguf } from './train-fixture.js';

let root: string;
let gguf: string;
let run: TrainRunSummary;
let runDir: string;

beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-train-e2e-'));
  process.env.QTK_CACHE = path.join(root, 'cache');
  gguf = await trainFixtureGguf(root);
  runDir = path.join(root, 'run');
  const quiet = { write: () => true } as unknown as NodeJS.WriteStream;
  run = await loraTrainMain({
    input: TRAIN_REPO, model: gguf, out: runDir, out$: quiet, err$: quiet, build: { evalFraction: 0.25 },
    flags: { rank: 4, alpha: 8, seqLen: 128, steps: 6, batch: 1, gradAccum: 2, lr: 2e-2, warmup: 0, evalEvery: 2, saveEvery: 3, evalRows: 2, threads: 2, seed: 1 },
  });
  console.log('eval loss by step:', run.history!.evals.map((e) => `${e.step}: ${e.loss.toFixed(4)}`).join(', '));
});
afterAll(async () => {
  delete process.env.QTK_CACHE;
  if (root) await fs.rm(root, { recursive: true, force: true });
});

describe('lora train on a repository', () => {
  it('ends with a lower eval loss than the base model had', () => {
    const evals = run.history!.evals.map((e) => e.loss);
    expect(evals.length).toBe(4);
    expect(evals.at(-1)!).toBeLessThan(evals[0]! - 1e-3);
  });

  it('writes the run folder', async () => {
    const files = await fs.readdir(runDir);
    for (const f of [RUN_FILES.metrics, RUN_FILES.plotPng, RUN_FILES.plotSvg, RUN_FILES.trainJson, RUN_FILES.gguf, RUN_FILES.peftDir, 'checkpoints']) expect(files).toContain(f);
    const csv = (await fs.readFile(path.join(runDir, RUN_FILES.metrics), 'utf8')).trim().split('\n');
    expect(csv).toHaveLength(1 + 7); // header, the eval before step 0, six steps
    const png = await fs.readFile(path.join(runDir, RUN_FILES.plotPng));
    expect(png.subarray(1, 4).toString()).toBe('PNG');
    const tj = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.trainJson), 'utf8'));
    expect(tj.status).toBe('finished');
    expect(tj.dataset.fingerprint).toMatch(/^sha256:/);
  });

  it('writes a PEFT adapter with HF module names and [r, in] / [out, r] shapes', async () => {
    const cfg = JSON.parse(await fs.readFile(path.join(runDir, 'adapter', 'adapter_config.json'), 'utf8'));
    expect(cfg.r).toBe(4);
    expect(cfg.lora_alpha).toBe(8);
    expect([...cfg.target_modules].sort()).toEqual(['down_proj', 'gate_proj', 'k_proj', 'o_proj', 'q_proj', 'up_proj', 'v_proj']);
    const st = await SafetensorsFile.open(path.join(runDir, 'adapter', 'adapter_model.safetensors'));
    try {
      expect(st.tensors.get('base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight')?.shape).toEqual([4, 64]);
      expect(st.tensors.get('base_model.model.model.layers.0.self_attn.k_proj.lora_B.weight')?.shape).toEqual([32, 4]);
      expect(st.tensors.size).toBe(2 * 7 * 2);
    } finally {
      await st.close();
    }
  });

  it('adapter.gguf loads in llama.cpp and changes the loss of the eval text', async () => {
    const lora = await readGgufLora(path.join(runDir, RUN_FILES.gguf));
    expect(lora.pairs.length).toBe(14);
    const datasetDir = JSON.parse(await fs.readFile(path.join(runDir, RUN_FILES.trainJson), 'utf8')).dataset.dir as string;
    const evalRows = await readTrainRows(path.join(datasetDir, 'eval.arrow'), 128);
    const row = evalRows.rows[0]!;
    // one document only: llama.cpp's context has no block-diagonal mask
    // and 32 positions: node-llama-cpp returns each position's probabilities as a 151,936-entry map
    let n = 1;
    while (n < Math.min(32, row.tokens.length) && row.documentIds[n] === row.documentIds[0]) n++;
    const tokens = Array.from(row.tokens.subarray(0, n));
    const nll = (logp: Float32Array, V: number) => {
      let s = 0, c = 0;
      for (let t = 1; t < n; t++) if (row.lossMask[t]) { s -= logp[(t - 1) * V + tokens[t]!]!; c++; }
      return s / c;
    };
    const V = 151936;
    const base = nll(await llamaLogProbs(gguf, tokens, V, { exactKv: true }), V);
    const adapted = nll(await llamaLogProbs(gguf, tokens, V, { exactKv: true, lora: [{ filePath: path.join(runDir, RUN_FILES.gguf) }] }), V);
    console.log(`llama.cpp eval NLL: base ${base.toFixed(4)}, with adapter ${adapted.toFixed(4)} (${n} tokens)`);
    expect(Math.abs(adapted - base)).toBeGreaterThan(1e-3);
  });

  it('qtk serve --lora with adapter.gguf changes the output', async () => {
    const server = await startServer({ model: gguf, lora: [{ path: path.join(runDir, RUN_FILES.gguf), scale: 1 }], port: 0, gpu: false, threads: 1, parallel: 1, ctx: 256, log: () => {} });
    try {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
      const logprobs = async (scale: number) => {
        const r = await client.completions.create({ model: server.modelId, prompt: 'export function build(', max_tokens: 4, temperature: 0, logprobs: 1, lora: [{ id: 0, scale }] } as never);
        return (r as OpenAI.Completion).choices[0]!.logprobs!.token_logprobs!;
      };
      const adapted = await logprobs(1);
      const base = await logprobs(0);
      expect(adapted[0]).not.toBe(base[0]);
    } finally {
      await server.close();
    }
  });
});
