// llama.cpp through node-llama-cpp as the oracle: log-probabilities of the next token at each
// position of a token sequence (node-llama-cpp has no raw-logits getter; log p = logits − a constant).
import { getLlama, type Llama } from 'node-llama-cpp';

let llama: Promise<Llama> | undefined;
export function cpuLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  return llama;
}

/** Row i = log p(next token | tokens[0..i]) over the whole vocabulary, for every position. */
export interface LlamaOracleOptions {
  threads?: number;
  /** f32 KV cache and no flash attention: llama.cpp then computes what the engine computes. */
  exactKv?: boolean;
}

export async function llamaLogProbs(gguf: string, tokens: number[], nVocab: number, opts: LlamaOracleOptions = {}): Promise<Float32Array> {
  const l = await cpuLlama();
  const model = await l.loadModel({ modelPath: gguf, gpuLayers: 0 });
  try {
    const ctx = await model.createContext({ contextSize: Math.max(256, tokens.length + 16), batchSize: Math.max(64, tokens.length), threads: opts.threads ?? 1, sequences: 1, ...(opts.exactKv ? { flashAttention: false, experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const } : {}) });
    try {
      const seq = ctx.getSequence();
      const out = await seq.controlledEvaluate(tokens.map((t) => [t as never, { generateNext: { probabilities: true } }] as never));
      const logp = new Float32Array(tokens.length * nVocab).fill(-Infinity);
      out.forEach((o, i) => {
        const probs = o?.next?.probabilities;
        if (!probs) throw new Error(`llama.cpp returned no probabilities at position ${i}`);
        for (const [tok, p] of probs) logp[i * nVocab + (tok as number)] = Math.log(p);
      });
      return logp;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/**
 * Each window evaluated from an empty state (as llama-perplexity does per chunk): row k of window w's
 * table = log p(next token | window[0..positions[k]]) over the whole vocabulary (−∞ where llama.cpp
 * returns no probability).
 */
export async function llamaWindowLogProbs(gguf: string, windows: number[][], positions: number[], nVocab: number, opts: LlamaOracleOptions = {}): Promise<Float32Array[]> {
  const l = await cpuLlama();
  const model = await l.loadModel({ modelPath: gguf, gpuLayers: 0 });
  try {
    const n = Math.max(...windows.map((w) => w.length));
    const ctx = await model.createContext({ contextSize: Math.max(256, n + 16), batchSize: Math.max(64, n), threads: opts.threads ?? 1, sequences: 1, ...(opts.exactKv ? { flashAttention: false, experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const } : {}) });
    try {
      const seq = ctx.getSequence();
      const tables: Float32Array[] = [];
      for (const w of windows) {
        await seq.clearHistory();
        const wanted = new Set(positions);
        const out = await seq.controlledEvaluate(w.map((t, i) => (wanted.has(i) ? [t, { generateNext: { probabilities: true } }] : t) as never));
        const logp = new Float32Array(positions.length * nVocab).fill(-Infinity);
        positions.forEach((pos, k) => {
          const probs = out[pos]?.next?.probabilities;
          if (!probs) throw new Error(`llama.cpp returned no probabilities at position ${pos}`);
          for (const [tok, p] of probs) logp[k * nVocab + (tok as number)] = Math.log(p);
        });
        tables.push(logp);
      }
      return tables;
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

/** Log-softmax of each row of `logits` (rows of `vocab`), in float64 accumulation. */
export function logSoftmax(logits: Float32Array, vocab: number): Float32Array {
  const out = new Float32Array(logits.length);
  for (let r = 0; r < logits.length / vocab; r++) {
    const row = logits.subarray(r * vocab, (r + 1) * vocab);
    let m = -Infinity;
    for (const x of row) m = Math.max(m, x);
    let s = 0;
    for (const x of row) s += Math.exp(x - m);
    const lse = m + Math.log(s);
    for (let i = 0; i < vocab; i++) out[r * vocab + i] = row[i]! - lse;
  }
  return out;
}

/**
 * Compare log-prob tables p (llama.cpp) and q (engine): KL(p‖q) per row, top-1 agreement, and max
 * |Δ log p| where p > 1e-6. Both rows are renormalised over the tokens llama.cpp returns (its sampler
 * leaves out a few control tokens, whose mass would otherwise show up as a constant offset).
 */
export function compareLogProbs(p: Float32Array, q: Float32Array, vocab: number) {
  const rows = p.length / vocab;
  let klSum = 0, klMax = 0, agree = 0, maxDiff = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * vocab;
    let mp = -Infinity, mq = -Infinity;
    for (let i = 0; i < vocab; i++) if (p[o + i]! > -Infinity) { mp = Math.max(mp, p[o + i]!); mq = Math.max(mq, q[o + i]!); }
    let sp = 0, sq = 0;
    for (let i = 0; i < vocab; i++) if (p[o + i]! > -Infinity) { sp += Math.exp(p[o + i]! - mp); sq += Math.exp(q[o + i]! - mq); }
    const zp = mp + Math.log(sp), zq = mq + Math.log(sq);
    let kl = 0, ap = -1, aq = -1;
    for (let i = 0; i < vocab; i++) {
      if (!(p[o + i]! > -Infinity)) continue;
      const lp = p[o + i]! - zp, lq = q[o + i]! - zq;
      if (ap < 0 || p[o + i]! > p[o + ap]!) ap = i;
      if (aq < 0 || q[o + i]! > q[o + aq]!) aq = i;
      kl += Math.exp(lp) * (lp - lq);
      if (lp > Math.log(1e-6)) maxDiff = Math.max(maxDiff, Math.abs(lp - lq));
    }
    klSum += kl;
    klMax = Math.max(klMax, kl);
    if (ap === aq) agree++;
  }
  return { meanKl: klSum / rows, maxKl: klMax, top1: agree / rows, maxDiff };
}
