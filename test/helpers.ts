// Shared by the end-to-end tests: run the built `qtk` binary as a user does, and ask llama.cpp
// (node-llama-cpp) for next-token distributions of a GGUF.
import { spawn, spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { getLlama, type Llama, type Token } from 'node-llama-cpp';

export const QTK_BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../packages/cli/dist/main.js');

export interface QtkRun {
  code: number | null;
  stdout: string;
  stderr: string;
  seconds: number;
}

/** `qtk ...args`, as a pipe (no TTY, so no progress bars); 2 threads on the shared test machine. */
export function qtk(cwd: string, ...args: string[]): QtkRun {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, [QTK_BIN, ...args], { cwd, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, CI: 'true' } });
  return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', seconds: (performance.now() - t0) / 1000 };
}

/** Like qtk(), but fails the test with the command's own output when it exits non-zero. */
export function qtkOk(cwd: string, ...args: string[]): QtkRun {
  const r = qtk(cwd, ...args);
  if (r.code !== 0) throw new Error(`qtk ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Starts `qtk serve … --port 0` and resolves with its URL once it prints where it listens. */
export function startQtkServe(cwd: string, args: string[]): Promise<{ url: string; stop: () => Promise<number | null>; log: () => string }> {
  const child = spawn(process.execPath, [QTK_BIN, 'serve', ...args], { cwd, env: { ...process.env, CI: 'true' }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGTERM');
    return exited;
  };
  return new Promise((resolve, reject) => {
    const onData = (b: Buffer) => {
      out += b.toString();
      const m = /qtk serve: .* on (http:\/\/[^\s]+)/.exec(out);
      if (m) resolve({ url: m[1]!, stop, log: () => out });
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`qtk serve exited ${code} before listening:\n${out}`)));
  });
}

let llamaPromise: Promise<Llama> | undefined;
export function cpuLlama(): Promise<Llama> {
  llamaPromise ??= getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  return llamaPromise;
}

/** llama.cpp's log-softmax at every position of `tokens` (−∞ where it reports no probability). */
export async function llamaLogProbs(modelPath: string, tokens: number[], vocab: number): Promise<Float64Array[]> {
  const llama = await cpuLlama();
  const model = await llama.loadModel({ modelPath });
  try {
    const ctx = await model.createContext({ contextSize: 64, threads: 2 });
    try {
      const res = await ctx.getSequence().controlledEvaluate(tokens.map((t) => [t as Token, { generateNext: { probabilities: true } }]));
      return res.map((r, i) => {
        const probs = r?.next?.probabilities;
        if (!probs) throw new Error(`${modelPath}: llama.cpp returned no probabilities at position ${i}`);
        const lp = new Float64Array(vocab).fill(Number.NEGATIVE_INFINITY);
        for (const [tok, p] of probs) lp[tok] = Math.log(p);
        return lp;
      });
    } finally {
      await ctx.dispose();
    }
  } finally {
    await model.dispose();
  }
}

export interface Closeness {
  /** max over positions of KL(p_ref ‖ p) in nats. */
  maxKl: number;
  /** max over positions of |Δ log p| on the reference's 50 most likely tokens. */
  maxTopAbs: number;
  /** positions whose top-1 token differs where the reference's top-2 gap exceeds tieMargin nats. */
  top1Differs: number;
}

export function closeness(ref: Float64Array[], other: Float64Array[], tieMargin = 0.5): Closeness {
  let maxKl = 0;
  let maxTopAbs = 0;
  let top1Differs = 0;
  ref.forEach((r, t) => {
    const o = other[t]!;
    let kl = 0;
    let ra = 0;
    let oa = 0;
    for (let i = 0; i < r.length; i++) {
      if (r[i]! > r[ra]!) ra = i;
      if (o[i]! > o[oa]!) oa = i;
      const p = Math.exp(r[i]!);
      if (p > 0) kl += p * (r[i]! - o[i]!);
    }
    const top = [...r.keys()].sort((a, b) => r[b]! - r[a]!).slice(0, 50);
    if (ra !== oa && r[top[0]!]! - r[top[1]!]! > tieMargin) top1Differs++;
    maxKl = Math.max(maxKl, Number.isNaN(kl) ? Infinity : kl);
    for (const i of top) maxTopAbs = Math.max(maxTopAbs, Math.abs(r[i]! - o[i]!));
  });
  return { maxKl, maxTopAbs, top1Differs };
}
