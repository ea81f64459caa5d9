// qtk eval ppl / kld and qtk imatrix on a fixture: perplexity against llama.cpp's figure from its own
// probabilities over the same windows; KLD self-consistency and against llama.cpp; the imatrix file
// against llama.cpp's format rules (read by @huggingface/gguf), its values against plain TS, and
// ggml's quantizer changing Q4_K bytes when given it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { gguf as hfGguf } from '@huggingface/gguf';
import { GgufReader } from '@qtk/core';
import { evalKldMain, evalPplMain, ggmlQuantize, imatrixMain, loadGgml, scoredPositions, contextWindows, tokenizeWithLlama, IMATRIX_MIN_TOKENS } from '../src/index.js';
import { fixtureGguf, requantizeGguf, type FixtureGguf } from './helpers.js';
import { cpuLlama } from '@qtk/fixtures/llama-oracle';

const TEXT = Array.from({ length: 12 }, (_, i) =>
  `Paragraph ${i + 1}. The quantization toolkit converts a checkpoint, measures its perplexity on held-out text and ` +
  `keeps the rows that matter most at higher precision; test number ${i * 7 + 3} checks that windows of ${16 << (i % 3)} tokens agree.`,
).join('\n');
const N_CTX = 32;

/** llama.cpp's perplexity over the same windows, from node-llama-cpp's next-token probabilities. */
async function llamaPerplexity(gguf: string, windows: number[][]): Promise<number> {
  const l = await cpuLlama();
  const model = await l.loadModel({ modelPath: gguf, gpuLayers: 0 });
  // f32 KV cache and no flash attention: llama.cpp then runs the engine's arithmetic (see llama-agreement)
  const ctx = await model.createContext({ contextSize: 256, batchSize: 64, threads: 1, sequences: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' });
  try {
    const seq = ctx.getSequence();
    let nll = 0, n = 0;
    for (const w of windows) {
      await seq.clearHistory();
      const scored = new Set(scoredPositions(w.length));
      const out = await seq.controlledEvaluate(w.map((t, i) => (scored.has(i) ? [t, { generateNext: { probabilities: true } }] : t) as never));
      for (const pos of scored) {
        const p = out[pos]!.next!.probabilities!.get(w[pos + 1]! as never)!;
        nll -= Math.log(p);
        n++;
      }
    }
    return Math.exp(nll / n);
  } finally {
    await ctx.dispose();
    await model.dispose();
  }
}

describe('eval and imatrix on a qwen3_5 fixture', () => {
  let f: FixtureGguf;
  let data: string;
  let q40: string;
  const lines: string[] = [];
  const out = (l: string) => lines.push(l);
  beforeAll(async () => {
    f = await fixtureGguf({ arch: 'qwen3_5', layers: 4 }, 'f32');
    data = path.join(path.dirname(f.gguf), 'text.txt');
    writeFileSync(data, TEXT);
    q40 = path.join(path.dirname(f.gguf), 'model-Q4_0.gguf');
    await requantizeGguf(f.gguf, q40, 'Q4_0');
  });
  afterAll(() => f?.cleanup());

  it('perplexity equals llama.cpp\'s over the same windows', async () => {
    const r = await evalPplMain({ model: f.gguf, data, ctx: N_CTX, threads: 1, device: 'cpu', out });
    const windows = contextWindows(await tokenizeWithLlama(f.gguf, TEXT), N_CTX, data);
    expect(r.windows).toBe(windows.length);
    expect(r.tokens).toBe(windows.length * (N_CTX - 1 - N_CTX / 2));
    const ref = await llamaPerplexity(f.gguf, windows);
    console.log(`engine PPL ${r.ppl.toFixed(4)} ± ${r.pplError.toFixed(4)}, llama.cpp ${ref.toFixed(4)}; ${lines.at(-1)}`);
    // same windows, weights and kernels (log p agree to ~1e-6 on common support), but node-llama-cpp's
    // probabilities leave out the control tokens and renormalise without them, which lowers every NLL by
    // their mass (measured ~9e-5 here); llama-perplexity, like the engine, normalises over the whole vocabulary
    expect(Math.abs(r.ppl - ref) / ref).toBeLessThan(1e-3);
    expect(Math.abs(r.ppl - ref)).toBeLessThan(r.pplError);
  });

  it('KL divergence: zero against itself, and Q4_0 against f32 matches the perplexities', async () => {
    const self = await evalKldMain({ base: f.gguf, model: f.gguf, data, ctx: N_CTX, threads: 1, device: 'cpu', out });
    expect(self.meanKld).toBeLessThan(1e-9);
    expect(self.sameTop).toBe(1);
    expect(Math.abs(self.deltaPpl)).toBeLessThan(1e-9);
    expect(self.deltaPplError).toBe(0); // no cancellation noise (it read ± 16384 at PPL ≈ 1e12)
    const q = await evalKldMain({ base: f.gguf, model: q40, data, ctx: N_CTX, threads: 1, device: 'cpu', out });
    const pq = await evalPplMain({ model: q40, data, ctx: N_CTX, threads: 1, device: 'cpu', out });
    console.log(lines.slice(-9).join('\n'));
    expect(q.meanKld).toBeGreaterThan(1e-4);
    expect(q.p99Kld).toBeGreaterThanOrEqual(q.medianKld);
    expect(q.maxKld).toBeGreaterThanOrEqual(q.p99Kld);
    expect(Math.abs(q.ppl - pq.ppl) / pq.ppl).toBeLessThan(1e-9);
    expect(Math.abs(q.pplBase - self.pplBase)).toBeLessThan(1e-9);
  });

  it('imatrix: llama.cpp\'s GGUF layout, Σx² values, and it changes Q4_K blocks', async () => {
    const out2 = path.join(path.dirname(f.gguf), 'imatrix.gguf');
    const r = await imatrixMain({ model: f.gguf, data, output: out2, ctx: N_CTX, threads: 1, device: 'cpu', out });
    // an independent parser, checked against common/imatrix-loader.cpp's rules
    const parsed = await hfGguf(out2, { allowLocalFile: true });
    const metadata = parsed.metadata as unknown as Record<string, unknown>;
    const tensorInfos = parsed.tensorInfos;
    expect(metadata['general.type']).toBe('imatrix');
    expect(metadata['imatrix.chunk_count']).toBe(r.windows);
    expect(metadata['imatrix.chunk_size']).toBe(N_CTX);
    expect(metadata['imatrix.datasets']).toEqual([data]);
    const names = tensorInfos.map((t) => t.name);
    const weights = names.filter((n) => n.endsWith('.in_sum2')).map((n) => n.slice(0, -'.in_sum2'.length));
    expect(weights).toEqual([...weights].sort());
    expect(weights.length).toBe(r.entries);
    for (const w of weights) expect(names).toContain(`${w}.counts`);
    for (const t of tensorInfos) expect(t.dtype).toBe(0); // F32
    expect(weights).toContain('blk.0.attn_qkv.weight');
    expect(weights).toContain('blk.3.attn_q.weight');
    expect(weights).not.toContain('output.weight');

    // values: layer 0's attn_qkv input is RMSNorm(embedding) × attn_norm, computable here
    const model = await GgufReader.open(f.gguf);
    const im = await GgufReader.open(out2);
    try {
      const E = model.tensor('token_embd.weight').ne[0]!;
      const emb = new Float32Array((await model.readTensor('token_embd.weight')).slice().buffer);
      const norm = new Float32Array((await model.readTensor('blk.0.attn_norm.weight')).slice().buffer);
      const eps = Number(model.get('qwen35.attention.layer_norm_rms_epsilon'));
      const windows = contextWindows(await tokenizeWithLlama(f.gguf, TEXT), N_CTX, data);
      const want = new Float64Array(E);
      for (const w of windows) for (const tok of w) {
        const row = emb.subarray(tok * E, (tok + 1) * E);
        let ss = 0;
        for (const x of row) ss += x * x;
        const inv = 1 / Math.sqrt(ss / E + eps);
        for (let j = 0; j < E; j++) want[j]! += (row[j]! * inv * norm[j]!) ** 2;
      }
      const got = new Float32Array((await im.readTensor('blk.0.attn_qkv.weight.in_sum2')).slice().buffer);
      const count = new Float32Array((await im.readTensor('blk.0.attn_qkv.weight.counts')).slice().buffer);
      expect(count[0]).toBe(windows.length * N_CTX);
      let rel = 0;
      for (let j = 0; j < E; j++) rel = Math.max(rel, Math.abs(got[j]! - want[j]!) / want[j]!);
      console.log(`imatrix blk.0.attn_qkv Σx² max relative error vs TS ${rel.toExponential(2)}, count ${count[0]}`);
      expect(rel).toBeLessThan(1e-4);
      expect(N_CTX).toBeGreaterThanOrEqual(IMATRIX_MIN_TOKENS);

      // ggml's Q4_K quantizer weighted by this imatrix writes other blocks than without it
      const lib = loadGgml('cpu');
      const rows = 4;
      const K = 256;
      const wv = Float32Array.from({ length: rows * K }, (_, i) => Math.sin(i * 0.37) + 0.3 * Math.cos(i * 1.3));
      const imat = Float32Array.from({ length: K }, (_, j) => got[j % E]!);
      const a = ggmlQuantize(lib, 'Q4_K', wv, K), b = ggmlQuantize(lib, 'Q4_K', wv, K, imat);
      expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).not.toBe(0);
    } finally {
      await model.close();
      await im.close();
    }
  });
});
