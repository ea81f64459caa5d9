// The whole pipeline through the built `qtk` binary, as a user runs it, on one tiny generated qwen3_5
// checkpoint: convert → imatrix → quantize → eval kld → dataset build → serve. Each step consumes the
// previous step's files; the judges are llama.cpp (node-llama-cpp and its libllama/libggml), apache-arrow
// and the official openai client. Needs `npm run build` first (the root `npm test` builds).
import { promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tableFromIPC } from 'apache-arrow';
import { LlamaCompletion } from 'node-llama-cpp';
import OpenAI from 'openai';
import { decodeToF32, GgufReader, type GgmlTypeName } from '@qtk/core';
import { generateFixture } from '@qtk/fixtures';
import { llamaModelQuantize, loadGgmlQuantizer, PRESETS, requiresImatrix } from '@qtk/quantize';
import { closeness, cpuLlama, llamaLogProbs, QTK_BIN, qtk, qtkOk, startQtkServe } from './helpers.js';

let tmp: string;
const at = (f: string) => path.join(tmp, f);
/** Embedding rows of the fixture (the real Qwen3 vocabulary size). */
const VOCAB = 151936;
/** Real Qwen3 token ids of `<|im_start|>user\ndef add(a, b):\n    return a + b`. */
const IDS = [151644, 872, 198, 750, 912, 2877, 11, 293, 982, 262, 470, 264, 488, 293];

beforeAll(async () => {
  await fs.stat(QTK_BIN).catch(() => {
    throw new Error(`${QTK_BIN} is missing: run \`npx turbo run build\` (the root \`npm test\` builds first)`);
  });
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'qtk-e2e-'));
  // qwen3_5 defaults, except ffn_down rows of 256 (intermediate 256) so k-quant and IQ4_XS blocks are used
  // on more than attn_output; with the default 128 nearly every tensor falls back to a 32-block type.
  await generateFixture({ arch: 'qwen3_5', outDir: at('hf'), seed: 7, intermediate: 256 });
  // calibration/eval text: this repository's README (real English, code and markdown)
  await fs.copyFile(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../README.md'), at('text.txt'));
});
afterAll(async () => {
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

/** Types whose ggml quantizer ignores an importance matrix (quantize_q8_0 discards quant_weights). */
const IGNORES_IMATRIX = new Set<GgmlTypeName>(['F32', 'F16', 'BF16', 'Q8_0']);

/** llama-quantize's reading of a GGUF imatrix (tools/quantize/quantize.cpp load_imatrix): sums / count. */
async function readImatrixAsLlama(file: string): Promise<Map<string, Float32Array>> {
  const r = await GgufReader.open(file);
  try {
    const out = new Map<string, Float32Array>();
    for (const t of r.tensors) {
      if (!t.name.endsWith('.in_sum2')) continue;
      const name = t.name.slice(0, -'.in_sum2'.length);
      const sums = decodeToF32('F32', await r.readTensor(t));
      const counts = decodeToF32('F32', await r.readTensor(`${name}.counts`));
      const ne0 = sums.length / counts.length;
      const e = new Float32Array(sums.length);
      counts.forEach((c, j) => {
        for (let i = 0; i < ne0; i++) e[j * ne0 + i] = c > 0 ? sums[j * ne0 + i]! / c : 1;
      });
      out.set(name, e);
    }
    return out;
  } finally {
    await r.close();
  }
}

async function tensorsOf(file: string): Promise<Map<string, { type: GgmlTypeName; ne: number[]; bytes: Uint8Array }>> {
  const r = await GgufReader.open(file);
  try {
    const m = new Map<string, { type: GgmlTypeName; ne: number[]; bytes: Uint8Array }>();
    for (const t of r.tensors) m.set(t.name, { type: t.type, ne: t.ne, bytes: await r.readTensor(t) });
    return m;
  } finally {
    await r.close();
  }
}

describe.sequential('qtk pipeline on a tiny qwen3_5 checkpoint', () => {
  let ref: Float64Array[];

  it('convert: f32, f16, bf16 and q8_0 GGUFs load in llama.cpp, each next-token distribution close to f32', async () => {
    for (const t of ['f32', 'f16', 'bf16', 'q8_0']) qtkOk(tmp, 'convert', 'hf', '-o', `model-${t}.gguf`, '--outtype', t);
    const types = await Promise.all(['f16', 'bf16', 'q8_0'].map(async (t) => (await tensorsOf(at(`model-${t}.gguf`))).get('blk.0.ffn_up.weight')!.type));
    expect(types).toEqual(['F16', 'BF16', 'Q8_0']);

    ref = await llamaLogProbs(at('model-f32.gguf'), IDS, VOCAB);
    // Tolerances from measurements on this fixture (see the log line), about 3× above them; CPU rounding alone gives
    // max |Δlogit| ≈ 0.2 (f16) and 0.8 (bf16) from weight and activation rounding alone. A missed transform
    // (norm +1, V-head order) moves log p by tens.
    const limits = { f16: { kl: 1e-3, top: 0.2 }, bf16: { kl: 0.01, top: 0.5 }, q8_0: { kl: 0.2, top: 2.5 } } as const;
    for (const t of ['f16', 'bf16', 'q8_0'] as const) {
      const c = closeness(ref, await llamaLogProbs(at(`model-${t}.gguf`), IDS, VOCAB));
      console.log(`convert ${t} vs f32 in llama.cpp: max KL ${c.maxKl.toExponential(2)}, max |Δ log p| (top 50) ${c.maxTopAbs.toFixed(4)}, top-1 differs at ${c.top1Differs}/${IDS.length}`);
      expect(c.maxKl, t).toBeLessThan(limits[t].kl);
      expect(c.maxTopAbs, t).toBeLessThan(limits[t].top);
      expect(c.top1Differs, t).toBe(0);
    }
    // q8_0 moves this fixture's logits most (block-scaled weights and Q8_0 activations): its bytes must be
    // exactly llama.cpp's own Q8_0 quantization of the f32 GGUF
    expect(llamaModelQuantize({ input: at('model-f32.gguf'), output: at('llama-q8_0.gguf'), ftype: PRESETS.Q8_0.ftype, threads: 2 })).toBe(0);
    const [ours, theirs] = [await tensorsOf(at('model-q8_0.gguf')), await tensorsOf(at('llama-q8_0.gguf'))];
    const differing = [...ours].filter(([n, t]) => t.type !== theirs.get(n)?.type || Buffer.compare(t.bytes, theirs.get(n)!.bytes) !== 0).map(([n, t]) => `${n} (${t.type})`);
    expect(differing).toEqual([]);
    expect(ours.size).toBe(theirs.size);
  });

  it('imatrix: one entry per matmul weight, Σx² over every evaluated token', async () => {
    const r = qtkOk(tmp, 'imatrix', 'model-f16.gguf', '--data', 'text.txt', '-o', 'imatrix.gguf', '--ctx', '128', '--chunks', '4', '--threads', '2', '--json');
    const j = JSON.parse(r.stdout.trim().split('\n').pop()!) as { entries: number; windows: number; tokens: number };
    console.log(`imatrix: ${j.entries} matrices, ${j.windows} windows, ${r.seconds.toFixed(1)} s`);
    expect(j.windows).toBe(4);
    const im = await readImatrixAsLlama(at('imatrix.gguf'));
    const model = await tensorsOf(at('model-f16.gguf'));
    // every 2-D weight of the 8 evaluated layers that a token passes through (the MTP block blk.8 never runs)
    const expected = [...model.entries()].filter(([n, t]) => t.ne.length === 2 && /^blk\.[0-7]\./.test(n) && t.type === 'F16').map(([n]) => n).sort();
    expect([...im.keys()].sort()).toEqual(expected);
    const raw = await GgufReader.open(at('imatrix.gguf'));
    try {
      for (const name of expected) {
        expect(im.get(name)!.length, name).toBe(model.get(name)!.ne[0]);
        const counts = decodeToF32('F32', await raw.readTensor(`${name}.counts`));
        expect(counts[0], name).toBe(4 * 128); // llama-imatrix counts tokens
        expect(im.get(name)!.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
      }
    } finally {
      await raw.close();
    }
  });

  const PRESET_RUNS = ['Q4_K_M', 'IQ4_XS'] as const;

  it('quantize with and without --imatrix: bytes equal llama.cpp\'s llama_model_quantize; the imatrix changes exactly the weighted tensors', async () => {
    const im = await readImatrixAsLlama(at('imatrix.gguf'));
    for (const preset of PRESET_RUNS) {
      for (const withIm of [false, true]) {
        const out = `model-${preset}${withIm ? '-im' : ''}.gguf`;
        const r = qtkOk(tmp, 'quantize', 'model-f16.gguf', out, '--type', preset, '--threads', '2', ...(withIm ? ['--imatrix', 'imatrix.gguf'] : []));
        expect((r.stdout + r.stderr).includes('(imatrix)')).toBe(withIm);
        expect(llamaModelQuantize({ input: at('model-f16.gguf'), output: at(`llama-${out}`), ftype: PRESETS[preset].ftype, threads: 2, imatrix: withIm ? im : undefined })).toBe(0);
        const ours = await tensorsOf(at(out));
        const theirs = await tensorsOf(at(`llama-${out}`));
        expect([...ours.keys()].sort()).toEqual([...theirs.keys()].sort());
        const mismatched = [...ours].filter(([n, t]) => t.type !== theirs.get(n)!.type || Buffer.compare(t.bytes, theirs.get(n)!.bytes) !== 0)
          .map(([n, t]) => `${n} (${t.type})`);
        expect(mismatched, `${out}: tensors differing from llama.cpp`).toEqual([]);
      }

      const plain = await tensorsOf(at(`model-${preset}.gguf`));
      const ours = await tensorsOf(at(`model-${preset}-im.gguf`));
      // llama-quantize picks some types differently once it has an imatrix (e.g. IQ4_XS bumps early ffn_down without one)
      const retyped = [...ours].filter(([n, t]) => t.type !== plain.get(n)!.type).map(([n, t]) => `${n} ${plain.get(n)!.type}→${t.type}`);
      const changed: string[] = [];
      const unchangedWeighted: string[] = [];
      const changedUnweighted: string[] = [];
      for (const [n, t] of ours) {
        if (t.type !== plain.get(n)!.type) continue;
        const same = Buffer.compare(t.bytes, plain.get(n)!.bytes) === 0;
        const weighted = im.has(n) && !IGNORES_IMATRIX.has(t.type);
        if (weighted && same) unchangedWeighted.push(n);
        if (!weighted && !same) changedUnweighted.push(`${n} (${t.type})`);
        if (!same) changed.push(n);
      }
      console.log(`${preset}: the imatrix changed the bytes of ${changed.length} of ${ours.size} tensors; types differ on ${retyped.length}: ${retyped.join(', ')}`);
      expect(changed.length).toBeGreaterThan(20);
      expect(unchangedWeighted, `${preset}: weighted tensors the imatrix did not change`).toEqual([]);
      expect(changedUnweighted, `${preset}: tensors without weights that changed`).toEqual([]);
    }
  });

  it('quantize --imatrix lowers the importance-weighted error Σ imatrix·(w − ŵ)² (dequantized by ggml)', async () => {
    const ggml = loadGgmlQuantizer(); // throws with the reason when ggml cannot load
    const im = await readImatrixAsLlama(at('imatrix.gguf'));
    const f16 = await tensorsOf(at('model-f16.gguf'));
    for (const preset of PRESET_RUNS) {
      const plain = await tensorsOf(at(`model-${preset}.gguf`));
      const withIm = await tensorsOf(at(`model-${preset}-im.gguf`));
      let totPlain = 0;
      let totIm = 0;
      let better = 0;
      let n = 0;
      for (const [name, t] of withIm) {
        if (!im.has(name) || IGNORES_IMATRIX.has(t.type) || plain.get(name)!.type !== t.type) continue;
        const w = decodeToF32('F16', f16.get(name)!.bytes);
        const imp = im.get(name)!;
        const err = (bytes: Uint8Array) => {
          const d = new Float32Array(w.length);
          ggml!.dequantize(t.type, bytes, d, w.length);
          let s = 0;
          for (let i = 0; i < w.length; i++) s += imp[i % imp.length]! * (w[i]! - d[i]!) ** 2;
          return s;
        };
        const ep = err(plain.get(name)!.bytes);
        const ei = err(t.bytes);
        totPlain += ep;
        totIm += ei;
        if (ei < ep) better++;
        n++;
      }
      console.log(`${preset}: weighted error with/without imatrix ${(totIm / totPlain).toFixed(3)}, lower on ${better}/${n} tensors`);
      expect(n).toBeGreaterThan(20);
      expect(totIm).toBeLessThan(totPlain);
      expect(better / n).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('eval kld: the imatrix-quantized models are not significantly further from f16 than without', () => {
    const kld = (m: string) => {
      const r = qtkOk(tmp, 'eval', 'kld', 'model-f16.gguf', m, '--data', 'text.txt', '--ctx', '128', '--chunks', '4', '--threads', '2', '--json');
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { meanKld: number; meanKldError: number; sameTop: number; count: number };
    };
    for (const preset of PRESET_RUNS) {
      const a = kld(`model-${preset}.gguf`);
      const b = kld(`model-${preset}-im.gguf`);
      console.log(`${preset}: mean KLD vs f16 ${a.meanKld.toFixed(4)} ± ${a.meanKldError.toFixed(4)} without imatrix, ${b.meanKld.toFixed(4)} ± ${b.meanKldError.toFixed(4)} with (same top ${(100 * a.sameTop).toFixed(1)}% → ${(100 * b.sameTop).toFixed(1)}%, ${a.count} tokens)`);
      expect(a.count).toBe(4 * 63); // llama-perplexity scores positions n_ctx/2 … n_ctx−2 of each window
      expect(a.meanKld).toBeGreaterThan(0);
      // a random tiny model and 256 tokens: allow noise, fail on a clear worsening
      expect(b.meanKld).toBeLessThan(a.meanKld + 2 * Math.hypot(a.meanKldError, b.meanKldError));
    }
  });

  it('quantize refuses a type that llama.cpp only makes with an imatrix (or an unsupported type) with a clear message', async () => {
    // No preset qtk offers needs an imatrix, so the refusal under test is of a type it does not offer.
    const needs = (Object.keys(PRESETS) as (keyof typeof PRESETS)[]).find((p) => requiresImatrix('blk.0.ffn_up.weight', PRESETS[p].defaultType as GgmlTypeName, PRESETS[p].ftype));
    expect(needs).toBeUndefined();
    const preset = 'IQ2_XXS';
    const r = qtk(tmp, 'quantize', 'model-f16.gguf', 'refused.gguf', '--type', preset);
    console.log(`quantize --type ${preset} without --imatrix: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^qtk: /);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stderr).toMatch(/IQ2_XXS.*(Q4_K_M|Choose)/s);
    await expect(fs.stat(at('refused.gguf'))).rejects.toThrow();
  });

  it('dataset build: the Arrow rows decode (apache-arrow, llama.cpp detokenizer) to the rendered files', async () => {
    const repo = at('tiny-repo');
    // each file well over 128 tokens, so whichever file the seeded split holds out is enough for `eval ppl --ctx 64`
    const lines = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('');
    const files: Record<string, string> = {
      'README.md': `# Tiny repo\n\n${lines(12, (i) => `- step ${i}: adds, multiplies and formats numbers (${i * 7} ms).\n`)}`,
      'src/add.ts': lines(10, (i) => `export function add${i}(a: number, b: number): number {\n  return a + b + ${i};\n}\n\n`),
      'src/mul.py': lines(10, (i) => `def mul_${i}(a, b):\n    """Product of a and b, plus ${i}."""\n    return a * b + ${i}\n\n`),
      'src/fmt.rs': lines(10, (i) => `pub fn fmt_${i}(x: f64) -> String {\n    format!("{x:.${i % 4}} → 面积 ${i}")\n}\n\n`),
    };
    for (const [f, text] of Object.entries(files)) {
      await fs.mkdir(path.dirname(path.join(repo, f)), { recursive: true });
      await fs.writeFile(path.join(repo, f), text);
    }
    // a quarter of the files held out: both splits are written and both must decode
    qtkOk(tmp, 'dataset', 'build', 'tiny-repo', '--tokenizer', 'model-f16.gguf', '--out', 'ds', '--seq-len', '64', '--eval-fraction', '0.25');
    const llama = await cpuLlama();
    const model = await llama.loadModel({ modelPath: at('model-f16.gguf') });
    const seen: string[] = [];
    try {
      for (const split of ['train', 'eval']) {
        const t = tableFromIPC(await fs.readFile(at(`ds/tiny-repo/${split}.arrow`)));
        expect(t.schema.fields.map((f) => f.name)).toEqual(expect.arrayContaining(['input_ids', 'loss_mask', 'document_ids', 'source_path']));
        const ids: number[] = [];
        const order: string[] = [];
        for (let i = 0; i < t.numRows; i++) {
          const row = t.get(i)!.toJSON() as { input_ids: { toArray(): Int32Array }; document_ids: { toArray(): Int32Array }; source_path: string };
          const inIds = [...row.input_ids.toArray()];
          const docs = [...row.document_ids.toArray()];
          expect(inIds.length).toBe(64);
          inIds.forEach((id, k) => { if (docs[k]! >= 0) ids.push(id); });
          // a file cut at a row boundary continues at the start of the next row
          for (const p of row.source_path.split('\n')) if (order[order.length - 1] !== p) order.push(p);
        }
        expect(order.length, split).toBeGreaterThan(0);
        seen.push(...order);
        const rendered = order.map((p) => `<|repo_name|>tiny-repo\n<|file_sep|>${p}\n${files[p]}<|endoftext|>`).join('');
        expect(model.detokenize(ids as never, true), split).toBe(rendered);
        expect([...model.tokenize(rendered, true)].map(Number), split).toEqual(ids);
      }
    } finally {
      await model.dispose();
    }
    expect(seen.sort()).toEqual(Object.keys(files).sort());

    // `qtk eval ppl` on the dataset folder reads its held-out split: this must work
    const ppl = qtk(tmp, 'eval', 'ppl', 'model-f16.gguf', '--data', 'ds/tiny-repo', '--ctx', '64', '--threads', '2', '--json');
    console.log(`eval ppl --data <dataset folder>: exit ${ppl.code}: ${(ppl.stdout + ppl.stderr).trim().split('\n').pop()}`);
    expect(ppl.code, ppl.stderr).toBe(0);
    const j = JSON.parse(ppl.stdout.trim().split('\n').pop()!) as { ppl: number; tokens: number; windows: number };
    expect(Number.isFinite(j.ppl)).toBe(true);
    expect(j.ppl).toBeGreaterThan(1);
    expect(j.windows).toBeGreaterThan(0);
    expect(j.tokens).toBe(j.windows * 31); // llama-perplexity scores positions 32 … 62 of each window of 64
  });

  it('serve: the Q4_K_M (imatrix) model answers a chat and a streamed completion through the openai client', async () => {
    const server = await startQtkServe(tmp, ['model-Q4_K_M-im.gguf', '--port', '0', '--no-gpu', '--ctx', '256', '--threads', '2']);
    let stopped = false;
    try {
      const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused' });
      const models = await client.models.list();
      expect(models.data.map((m) => m.id)).toEqual(['model-Q4_K_M-im']);
      const chat = await client.chat.completions.create({ model: 'model-Q4_K_M-im', messages: [{ role: 'user', content: 'Write a haiku about quantization.' }], max_tokens: 8, temperature: 0 });
      expect(chat.choices[0]!.message.role).toBe('assistant');
      expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
      expect(chat.usage!.completion_tokens).toBeLessThanOrEqual(8);
      expect((chat.choices[0]!.message.content ?? '') + (chat.choices[0]!.message as { reasoning_content?: string }).reasoning_content).not.toBe('');

      const req = { model: 'model-Q4_K_M-im', prompt: 'def add(a, b):', max_tokens: 8, temperature: 0 };
      const whole = await client.completions.create(req);
      const stream = await client.completions.create({ ...req, stream: true });
      let text = '';
      let chunks = 0;
      let finish: string | null = null;
      for await (const c of stream) {
        chunks++;
        text += c.choices[0]?.text ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
      }
      console.log(`serve: chat ${JSON.stringify(chat.choices[0]!.message.content)}; completion ${JSON.stringify(whole.choices[0]!.text)} (${chunks} stream chunks)`);
      expect(chunks).toBeGreaterThan(1);
      expect(whole.choices[0]!.text.length).toBeGreaterThan(0);
      expect(text).toBe(whole.choices[0]!.text);
      expect(finish).toBe(whole.choices[0]!.finish_reason);
      const code = await server.stop();
      stopped = true;
      expect(code, server.log()).toBe(0);
      expect(server.log()).toMatch(/qtk serve: stopped/);

      // the served greedy text is llama.cpp's own greedy continuation of the same prompt on the same file
      const model = await (await cpuLlama()).loadModel({ modelPath: at('model-Q4_K_M-im.gguf') });
      try {
        const ctx = await model.createContext({ contextSize: 256, threads: 2 });
        try {
          const completion = new LlamaCompletion({ contextSequence: ctx.getSequence() });
          const direct = await completion.generateCompletion(model.tokenize(req.prompt, true), { maxTokens: whole.usage!.completion_tokens, temperature: 0 });
          expect(whole.choices[0]!.text).toBe(direct);
        } finally {
          await ctx.dispose();
        }
      } finally {
        await model.dispose();
      }
    } finally {
      if (!stopped) await server.stop();
    }
  });
});
