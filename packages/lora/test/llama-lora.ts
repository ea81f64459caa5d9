// llama.cpp through node-llama-cpp as the oracle, with GGUF LoRA adapters on the context: log p of the
// next token at every position (node-llama-cpp has no raw-logits getter; log p = logits − a constant).
import { getLlama, type Llama } from 'node-llama-cpp';

let llama: Promise<Llama> | undefined;
function cpuLlama(): Promise<Llama> {
  llama ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  return llama;
}

export async function llamaLogProbs(gguf: string, tokens: number[], nVocab: number, lora: { filePath: string; scale?: number }[] = []): Promise<Float32Array> {
  const l = await cpuLlama();
  const model = await l.loadModel({ modelPath: gguf, gpuLayers: 0 });
  try {
    // f32 KV cache, no flash attention: llama.cpp then computes what the reference computes, up to f32 sums.
    const ctx = await model.createContext({
      contextSize: 256, batchSize: Math.max(64, tokens.length), threads: 1, sequences: 1,
      flashAttention: false, experimentalKvCacheKeyType: 'F32' as const, experimentalKvCacheValueType: 'F32' as const,
      ...(lora.length > 0 ? { lora: { adapters: lora } } : {}),
    });
    try {
      const out = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t as never, { generateNext: { probabilities: true } }] as never));
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

/** Log-softmax of each row of `logits` (rows of `vocab`), float64 sums. */
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
 * max |Δ log p| between llama.cpp's table p and log-probabilities q, over tokens llama.cpp returns with
 * p > 1e-6, both renormalised over those tokens (its sampler leaves out a few control tokens).
 */
export function maxLogProbDiff(p: Float32Array, q: Float32Array, vocab: number): number {
  let maxDiff = 0;
  for (let r = 0; r < p.length / vocab; r++) {
    const o = r * vocab;
    let mp = -Infinity, mq = -Infinity;
    for (let i = 0; i < vocab; i++) if (p[o + i]! > -Infinity) { mp = Math.max(mp, p[o + i]!); mq = Math.max(mq, q[o + i]!); }
    let sp = 0, sq = 0;
    for (let i = 0; i < vocab; i++) if (p[o + i]! > -Infinity) { sp += Math.exp(p[o + i]! - mp); sq += Math.exp(q[o + i]! - mq); }
    const zp = mp + Math.log(sp), zq = mq + Math.log(sq);
    for (let i = 0; i < vocab; i++) {
      if (!(p[o + i]! > -Infinity)) continue;
      const lp = p[o + i]! - zp, lq = q[o + i]! - zq;
      if (lp > Math.log(1e-6)) maxDiff = Math.max(maxDiff, Math.abs(lp - lq));
    }
  }
  return maxDiff;
}
