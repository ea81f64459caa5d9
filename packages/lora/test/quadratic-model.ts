// A TrainableModel whose loss and gradients are exact closed forms, so the trainer (optimizer, schedule,
// accumulation, checkpoints, resume) is tested against arithmetic rather than against itself.
// Per loss-mask position t: x_t = features of the previous token (seeded), y_t = T·x_t for a fixed
// rank-1 T (reachable by the adapter, so held-out rows improve too);
// loss_t = ½‖s·B·A·x_t − y_t‖², so with G = Σ_t (s·B·A·x_t − y_t) x_tᵀ:  dL/dB = s·G·Aᵀ,  dL/dA = s·Bᵀ·G.
import type { LoraParam, LossAndGradients, TrainBatch, TrainableModel } from '../src/train/model.js';
import { mulberry32, mixSeed } from '../src/train/rng.js';

export interface QuadraticOptions {
  modules: number;
  dIn: number;
  dOut: number;
  rank: number;
  scale: number;
  seed: number;
  /** Milliseconds each lossAndGradients call sleeps (to give a test time to kill the process). */
  delayMs?: number;
}

function features(token: number, n: number, seed: number, salt: number): Float64Array {
  const r = mulberry32(mixSeed(seed, salt, token));
  return Float64Array.from({ length: n }, () => r() * 2 - 1);
}

export class QuadraticModel implements TrainableModel {
  private ps: LoraParam[];
  private u: Float64Array;
  private v: Float64Array;
  calls = 0;

  constructor(readonly o: QuadraticOptions) {
    const r = mulberry32(mixSeed(o.seed, 7));
    this.u = features(0, o.dOut, o.seed, 3);
    this.v = features(0, o.dIn, o.seed, 4);
    this.ps = Array.from({ length: o.modules }, (_, m) => ({
      module: `model.layers.${m}.mlp.up_proj`,
      tensor: `blk.${m}.ffn_up.weight`,
      // PEFT's start: A random, B zero, so the adapter begins as the identity change
      a: Float32Array.from({ length: o.rank * o.dIn }, () => (r() * 2 - 1) * 0.5),
      b: new Float32Array(o.dOut * o.rank),
      shapeA: [o.rank, o.dIn] as const,
      shapeB: [o.dOut, o.rank] as const,
    }));
  }

  params(): readonly LoraParam[] {
    return this.ps;
  }

  setParams(p: readonly { module: string; a: Float32Array; b: Float32Array }[]): void {
    p.forEach((x, i) => {
      this.ps[i]!.a.set(x.a);
      this.ps[i]!.b.set(x.b);
    });
  }

  private pass(batch: TrainBatch, grads: boolean): LossAndGradients {
    const { dIn, dOut, rank: R, scale: s, seed } = this.o;
    let lossSum = 0, nTokens = 0;
    const out = this.ps.map((p) => ({ a: new Float32Array(p.a.length), b: new Float32Array(p.b.length) }));
    for (let t = 1; t < batch.tokens.length; t++) {
      if (!batch.lossMask[t]) continue;
      nTokens++;
      // the target depends on the previous token too, as a next-token loss does
      const x = features(batch.tokens[t - 1]!, dIn, seed, 1);
      const y = new Float64Array(dOut);
      let vx = 0;
      for (let k = 0; k < dIn; k++) vx += this.v[k]! * x[k]!;
      for (let o = 0; o < dOut; o++) y[o] = this.u[o]! * vx;
      this.ps.forEach((p, m) => {
        const ax = new Float64Array(R);
        for (let i = 0; i < R; i++) for (let k = 0; k < dIn; k++) ax[i]! += p.a[i * dIn + k]! * x[k]!;
        const e = new Float64Array(dOut);
        for (let o = 0; o < dOut; o++) {
          let v = 0;
          for (let i = 0; i < R; i++) v += p.b[o * R + i]! * ax[i]!;
          e[o] = s * v - y[o]! * (m + 1) / this.ps.length;
          lossSum += 0.5 * e[o]! * e[o]!;
        }
        if (!grads) return;
        // dB[o,i] = s·e_o·(Ax)_i ; dA[i,k] = s·(Bᵀe)_i·x_k
        for (let o = 0; o < dOut; o++) for (let i = 0; i < R; i++) out[m]!.b[o * R + i]! += s * e[o]! * ax[i]!;
        for (let i = 0; i < R; i++) {
          let bte = 0;
          for (let o = 0; o < dOut; o++) bte += p.b[o * R + i]! * e[o]!;
          for (let k = 0; k < dIn; k++) out[m]!.a[i * dIn + k]! += s * bte * x[k]!;
        }
      });
    }
    return { lossSum, nTokens, grads: out };
  }

  async lossAndGradients(batch: TrainBatch): Promise<LossAndGradients> {
    this.calls++;
    if (this.o.delayMs) await new Promise((r) => setTimeout(r, this.o.delayMs));
    return this.pass(batch, true);
  }

  evalLoss(batch: TrainBatch): { lossSum: number; nTokens: number } {
    const { lossSum, nTokens } = this.pass(batch, false);
    return { lossSum, nTokens };
  }

  free(): void {}
}

/** Seeded rows over a small vocabulary, each holding two documents. */
export function quadraticRows(n: number, len: number, vocab: number, seed: number): TrainBatch[] {
  const r = mulberry32(mixSeed(seed, 99));
  return Array.from({ length: n }, () => {
    const tokens = Int32Array.from({ length: len }, () => Math.floor(r() * vocab));
    const lossMask = Uint8Array.from({ length: len }, (_, k) => (k % 5 === 0 ? 0 : 1));
    const documentIds = Int32Array.from({ length: len }, (_, k) => (k < len / 2 ? 0 : 1));
    return { tokens, lossMask, documentIds };
  });
}
