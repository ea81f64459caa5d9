// Log-softmax statistics of the scored positions, computed in the graph so that only a few numbers per
// position cross the FFI instead of [vocab × positions] logits. Per row of logits x (as llama-perplexity's
// log_softmax: f32 exp, a double sum): m = max x, s = Σ exp(x − m), x_t at the target token, the argmax;
// log p(t) = x_t − m − log s is finished in float64 here. Optionally the f32 log-probabilities
// (x − m) − log s of whole rows (the KL base), and KL(base ‖ this) = Σ exp(b)·(b − lp) against base rows.
import type { Backend } from '../ggml/backend.js';
import type { Tensor } from '../ggml/tensor.js';
import type { BuildCtx } from '../model/build.js';
import type { GraphHooks } from '../model/model.js';

export interface ScoredRow {
  /** Position in the evaluated tokens whose logits this is (it predicts token position + 1). */
  pos: number;
  /** log p(target) in float64. */
  logProb: number;
  /** Index of the largest logit (the first on ties). */
  top: number;
  /** KL(base ‖ this model) when base rows were given. */
  kl?: number;
}

export interface ScoreOptions {
  /** Read back each row's f32 log-probabilities (the vocabulary) in `rows` order. */
  logProbs?: (positions: readonly number[], rows: Float32Array) => void;
  /** f32 log-probabilities of a base model for the chunk's positions, [vocab × n] in positions order. */
  baseRows?: (positions: readonly number[]) => Float32Array;
}

/** Graph hooks that score every requested position against `targets[pos + 1]`; results land in `rows`. */
export class ScoreHead {
  readonly rows: ScoredRow[] = [];
  private pending: { positions: readonly number[]; tgt: Tensor; top: Tensor; m: Tensor; s: Tensor; xt: Tensor; lp?: Tensor; base?: Tensor; kl?: Tensor }[] = [];

  constructor(
    private readonly targets: ArrayLike<number>,
    private readonly opts: ScoreOptions = {},
  ) {}

  hooks(extra: GraphHooks = {}): GraphHooks {
    return {
      mm: extra.mm,
      logits: (b, L, positions) => this.build(b, L, positions),
      beforeCompute: (be) => {
        extra.beforeCompute?.(be);
        for (const p of this.pending) {
          be.setData(p.tgt, Int32Array.from(p.positions, (q) => this.targets[q + 1]!));
          if (p.base) be.setData(p.base, this.opts.baseRows!(p.positions));
        }
      },
      afterCompute: (be) => {
        extra.afterCompute?.(be);
        this.read(be);
      },
    };
  }

  private build(b: BuildCtx, L: Tensor, positions: readonly number[]): void {
    const g = b.g;
    const [V, n] = L.ne;
    const input = (t: Tensor) => (g.lib.ggml_set_input(t.ptr), t);
    const tgt = input(g.newTensor('I32', [1, n], 'score_targets'));
    const L3 = g.reshape(L, [1, V, n]); // one-element rows, so get_rows picks one entry per column
    const top = g.argmax(L);
    const m = g.getRows(L3, g.reshape(top, [1, n]));
    const shifted = g.sub(L, g.reshape(m, [1, n]));
    const s = g.sumRows(g.exp(shifted));
    const xt = g.getRows(L3, tgt);
    const p: (typeof this.pending)[number] = { positions, tgt, top, m, s, xt };
    if (this.opts.logProbs || this.opts.baseRows) {
      const lp = g.sub(shifted, g.log(s));
      if (this.opts.logProbs) p.lp = lp;
      if (this.opts.baseRows) {
        p.base = input(g.newTensor('F32', [V, n], 'score_base'));
        p.kl = g.sumRows(g.mul(g.exp(p.base), g.sub(p.base, lp)));
      }
    }
    // read back after compute: outputs, so the allocator does not reuse their memory for later nodes
    for (const t of [top, m, s, xt, p.lp, p.kl]) {
      if (!t) continue;
      g.lib.ggml_set_output(t.ptr);
      b.effects.push(t);
    }
    this.pending.push(p);
  }

  private read(be: Backend): void {
    for (const p of this.pending) {
      const n = p.positions.length;
      const top = new Int32Array(n);
      be.lib.ggml_backend_tensor_get(p.top.ptr, top, 0, 4 * n);
      const [m, s, xt] = [be.getF32(p.m), be.getF32(p.s), be.getF32(p.xt)];
      const kl = p.kl ? be.getF32(p.kl) : undefined;
      p.positions.forEach((pos, i) => {
        const row: ScoredRow = { pos, logProb: xt[i]! - m[i]! - Math.log(s[i]!), top: top[i]! };
        if (kl) row.kl = kl[i]!;
        this.rows.push(row);
      });
      if (p.lp) this.opts.logProbs!(p.positions, be.getF32(p.lp));
    }
    this.pending = [];
  }
}
