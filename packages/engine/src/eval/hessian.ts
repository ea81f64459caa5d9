// GPTQ's Hessians: for each weight matrix W that a matmul applies to input X ([n_in, tokens]), H = 2XᵀX/n
// accumulated over calibration tokens. XᵀX is computed in the graph (one ggml mul_mat per distinct input,
// f32) and summed here in f64. Matmuls that read the same input tensor (q/k/v, gate/up, the DeltaNet
// in-projections) share one Hessian. `wants` limits collection (e.g. to one layer) so memory stays bounded.
import type { Backend } from '../ggml/backend.js';
import type { Ptr } from '../ggml/lib.js';
import type { Tensor } from '../ggml/tensor.js';
import type { BuildCtx } from '../model/build.js';
import type { GraphHooks } from '../model/model.js';

export interface HessianEntry {
  /** Σ_t x xᵀ, n_in × n_in row-major. */
  sum: Float64Array;
  nIn: number;
  /** Token rows summed. */
  count: number;
  /** The weights whose matmuls read this input. */
  names: string[];
}

export class HessianCollector {
  /** By the first weight name that read the input. */
  readonly entries = new Map<string, HessianEntry>();
  private readonly keyOf = new Map<string, string>();
  private pending: { key: string; t: Tensor; rows: number; nIn: number }[] = [];
  private seen = new Map<Ptr, string>();

  constructor(readonly wants: (name: string) => boolean) {}

  /** The Hessian a weight uses (its shared input's), once collected. */
  entryFor(name: string): HessianEntry | undefined {
    const k = this.keyOf.get(name);
    return k === undefined ? undefined : this.entries.get(k);
  }

  /** H = 2·Σxxᵀ/n as f32 (what the solver reads). */
  static hessian(e: HessianEntry): Float32Array {
    const H = new Float32Array(e.sum.length);
    const s = e.count > 0 ? 2 / e.count : 0;
    for (let i = 0; i < H.length; i++) H[i] = s * e.sum[i]!;
    return H;
  }

  hooks(): GraphHooks {
    return {
      mm: (b: BuildCtx, _w: Tensor, x: Tensor, name: string) => {
        if (!this.wants(name)) return;
        const shared = this.seen.get(x.ptr);
        if (shared !== undefined) {
          this.keyOf.set(name, shared);
          const e = this.entries.get(shared);
          if (e && !e.names.includes(name)) e.names.push(name);
          return;
        }
        this.seen.set(x.ptr, name);
        this.keyOf.set(name, name);
        const g = b.g;
        const nIn = x.ne[0], rows = x.ne[1] * x.ne[2] * x.ne[3];
        const xt = g.cont(g.transpose(g.reshape(g.cont(x), [nIn, rows]))); // [rows, n_in]
        const xtx = g.mulMat(xt, xt); // [n_in, n_in] = XᵀX
        b.effects.push(xtx);
        this.pending.push({ key: name, t: xtx, rows, nIn });
        if (!this.entries.has(name)) this.entries.set(name, { sum: new Float64Array(nIn * nIn), nIn, count: 0, names: [name] });
      },
      afterCompute: (be: Backend) => {
        for (const p of this.pending) {
          const v = be.getF32(p.t);
          const e = this.entries.get(p.key)!;
          for (let i = 0; i < v.length; i++) e.sum[i]! += v[i]!;
          e.count += p.rows;
        }
        this.pending = [];
        this.seen = new Map();
      },
    };
  }
}
