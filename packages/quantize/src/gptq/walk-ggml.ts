// The batch update of the slab walk as one ggml matmul per batch: D = E·U[i1:i2, i2:] in f32 on the CPU
// backend's threads (llamafile's sgemm when the operands allow), then w −= D in f64. ggml contracts along
// each operand's rows, so U is held transposed (row j of Uᵀ is column j of U); U is uploaded once per
// prepared Hessian and kept while the tensors that share it are solved.
import { Backend, GgmlContext, GraphRunner, type BackendBuffer, type Tensor } from '@qtk/engine';
import type { PreparedHessian } from './hessian.js';
import type { TrailingUpdate } from './walk.js';

export interface GgmlUpdateOptions {
  /** CPU threads (default: the engine's default). */
  threads?: number;
  /** The largest batch and slab the walk will use. */
  batch: number;
  slabRows: number;
}

/** Products below this many multiply-adds run on one thread: waking the others costs more than they save. */
const SMALL_PRODUCT = 1 << 22;

export class GgmlTrailingUpdate implements TrailingUpdate {
  private readonly backend: Backend;
  private readonly runner: GraphRunner;
  /** One thread, over the same CPU buffers, for the inner batches' small products. */
  private readonly single: Backend;
  private readonly singleRunner: GraphRunner;
  private readonly ctx: GgmlContext;
  private readonly buf: BackendBuffer;
  private readonly ut: Tensor;
  private readonly e: Tensor;
  private readonly n: number;
  private e32: Float32Array;
  private d32 = new Float32Array(0);

  constructor(h: PreparedHessian, private readonly o: GgmlUpdateOptions) {
    const n = (this.n = h.n);
    this.backend = Backend.create({ device: 'cpu', threads: o.threads });
    this.runner = new GraphRunner(this.backend);
    this.single = Backend.create({ device: 'cpu', threads: 1 });
    this.singleRunner = new GraphRunner(this.single);
    this.ctx = new GgmlContext(this.backend.lib, 2);
    this.ut = this.ctx.newTensor('F32', [n, n], 'gptq.ut');
    this.e = this.ctx.newTensor('F32', [o.batch * o.slabRows], 'gptq.err');
    this.buf = this.backend.allocContext(this.ctx);
    this.e32 = new Float32Array(o.batch * o.slabRows);
    // Uᵀ in chunks of rows, transposed tile by tile so the reads of U stay in cache
    const R = Math.max(1, Math.min(n, Math.floor((16 << 20) / (4 * n))));
    const chunk = new Float32Array(R * n);
    const U = h.U;
    for (let j0 = 0; j0 < n; j0 += R) {
      const j1 = Math.min(n, j0 + R);
      for (let i0 = 0; i0 < n; i0 += 64) {
        const iEnd = Math.min(n, i0 + 64);
        for (let j = j0; j < j1; j++) {
          const co = (j - j0) * n;
          for (let i = i0; i < iEnd; i++) chunk[co + i] = U[i * n + j]!;
        }
      }
      this.backend.setData(this.ut, chunk.subarray(0, (j1 - j0) * n), j0 * n * 4);
    }
  }

  apply(w: Float64Array, rows: number, E: Float64Array, i1: number, i2: number, to: number): void {
    const n = this.n, B = i2 - i1, m = to - i2;
    if (B > this.o.batch || rows > this.o.slabRows) throw new RangeError(`batch ${B} × ${rows} rows exceeds the ${this.o.batch} × ${this.o.slabRows} the update was built for`);
    for (let k = 0; k < rows * B; k++) this.e32[k] = E[k]!;
    this.backend.setData(this.e, this.e32.subarray(0, rows * B));
    const ctx = new GgmlContext(this.backend.lib, 4, 8);
    try {
      // a: rows i2 ≤ j < to of Uᵀ, columns i1..i2 (row stride n); b: E, rows × B
      const a = ctx.view(this.ut, [B, m], [n * 4], (i2 * n + i1) * 4);
      const b = ctx.view(this.e, [B, rows], [B * 4], 0);
      const d = ctx.mulMat(a, b);
      const runner = B * m * rows < SMALL_PRODUCT ? this.singleRunner : this.runner;
      const gf = runner.graph(ctx, [d]);
      runner.alloc(gf);
      runner.compute(gf);
      if (this.d32.length < rows * m) this.d32 = new Float32Array(rows * m);
      const D = this.backend.getF32(d, this.d32.subarray(0, rows * m));
      for (let r = 0; r < rows; r++) {
        const ro = r * n + i2, dO = r * m;
        for (let k = 0; k < m; k++) w[ro + k] -= D[dO + k]!;
      }
    } finally {
      ctx.free();
    }
  }

  free(): void {
    this.singleRunner.free();
    this.single.free();
    this.runner.free();
    this.buf.free();
    this.ctx.free();
    this.backend.free();
  }
}
