// Log-softmax statistics of the scored positions, computed in the graph so that only a few numbers per
// position cross the FFI instead of [vocab × positions] logits. Per row of logits x (as llama-perplexity's
// log_softmax: f32 exp, a double sum): m = max x, s = Σ exp(x − m), x_t at the target token, the argmax;
// log p(t) = x_t − m − log s is finished in float64 here. Optionally the f32 log-probabilities
// (x − m) − log s of whole rows stored in a file (the KL base), and KL(base ‖ this) = Σ exp(b)·(b − lp)
// against base rows read from one (logprob-file.ts).
import type { Backend } from '../ggml/backend.js';
import type { LogProbFile } from './logprob-file.js';
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

/** Rows of a log-probability file, `row(pos)` the row of position pos (a chunk's rows are consecutive). */
export interface FileRows {
  file: LogProbFile;
  row: (pos: number) => number;
}

export interface ScoreOptions {
  /** Store each scored row's f32 log-probabilities (the vocabulary) in the file (the KL base). */
  saveLogProbs?: FileRows;
  /** A base model's f32 log-probabilities for the scored positions: KL(base ‖ this) per row. */
  base?: FileRows;
}

/** Graph hooks that score every requested position against `targets[pos + 1]`; results land in `rows`. */
export class ScoreHead {
  readonly rows: ScoredRow[] = [];
  /** Per chunk: the tensors to read back, and (lp, base) those copied from or to a file off the CPU. */
  private pending: { positions: readonly number[]; tgt: Tensor; top: Tensor; m: Tensor; s: Tensor; xt: Tensor; kl?: Tensor; lp?: { t: Tensor; first: number }; base?: { t: Tensor; first: number } }[] = [];

  /** `backend` runs the graph; it is needed only with file rows (saveLogProbs, base). */
  constructor(
    private readonly targets: ArrayLike<number>,
    private readonly opts: ScoreOptions = {},
    private readonly backend?: Backend,
  ) {}

  private fileRows(f: FileRows, positions: readonly number[]): number {
    const first = f.row(positions[0]!);
    positions.forEach((q, i) => {
      if (f.row(q) !== first + i) throw new RangeError(`scored positions ${positions[0]}..${positions.at(-1)} do not map to consecutive file rows`);
    });
    return first;
  }

  private fileTensor(g: BuildCtx['g'], f: FileRows, positions: readonly number[], name: string) {
    if (!this.backend) throw new Error('ScoreHead: file rows need the backend that runs the graph');
    const first = this.fileRows(f, positions);
    return { first, ...f.file.tensor(this.backend, g, first, positions.length, name) };
  }

  hooks(extra: GraphHooks = {}): GraphHooks {
    return {
      mm: extra.mm,
      logits: (b, L, positions) => this.build(b, L, positions),
      beforeCompute: (be) => {
        extra.beforeCompute?.(be);
        for (const p of this.pending) {
          be.setData(p.tgt, Int32Array.from(p.positions, (q) => this.targets[q + 1]!));
          if (p.base) this.opts.base!.file.load(be, p.base.t, p.base.first);
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
    const { saveLogProbs: save, base } = this.opts;
    if (save || base) {
      const lp = g.sub(shifted, g.log(s));
      if (save) {
        // on the CPU the rows go straight into the file's mapping; elsewhere they are read back into it
        const dst = this.fileTensor(g, save, positions, 'score_logprobs');
        if (dst.placed) b.effects.push(g.cpy(lp, dst.t));
        else p.lp = { t: lp, first: dst.first };
      }
      if (base) {
        const src = this.fileTensor(g, base, positions, 'score_base');
        if (!src.placed) p.base = { t: input(src.t), first: src.first };
        p.kl = g.sumRows(g.mul(g.exp(src.t), g.sub(src.t, lp)));
      }
    }
    // read back after compute: outputs, so the allocator does not reuse their memory for later nodes
    for (const t of [top, m, s, xt, p.lp?.t, p.kl]) {
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
      if (p.lp) this.opts.saveLogProbs!.file.save(be, p.lp.t, p.lp.first);
    }
    this.pending = [];
  }
}
