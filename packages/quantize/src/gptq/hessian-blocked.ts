// prepareHessian's fast form: the same U (upper Cholesky factor of H⁻¹ in walk order) by blocked algorithms
// whose bulk is f32 matrix products run by ggml on the CPU backend's threads. f32 is what GPTQ's own
// implementations use for this step (torch cholesky / cholesky_inverse in f32); the diagonal blocks are
// factored and inverted in f64 here, and test/gptq-fast.test.ts bounds the difference from the reference.
//
// One Cholesky and one triangular inverse (⅔·n³ flops, where the reference's Cholesky, inverse and
// second Cholesky cost ≈ 2n³): with J the order reversal and P = J·A·J = M·Mᵀ (M lower), A = V·Vᵀ for
// the upper V = J·M·J, so A⁻¹ = V⁻ᵀ·V⁻¹ and U = V⁻¹ = J·M⁻¹·J (upper, positive diagonal: the factor).
//
// Storage: one n×n f32 ggml tensor. Its lower triangle holds P, then M (right-looking blocked Cholesky:
// each step factors a diagonal block in f64, solves the panel below it by one product with the block's
// inverse, and updates the lower trailing matrix strip by strip). Its strict upper triangle then holds
// Xᵀ for X = M⁻¹ (block forward substitution of M·X = I, right-looking: one product per block row).
// The diagonal blocks of M⁻¹ stay in f64 here.
import { Backend, GgmlContext, GraphRunner, type Tensor } from '@qtk/engine';
import { choleskyLower, dampedFactor, hessianWalk, invertLower, type PrepareOptions, type PreparedHessian } from './hessian.js';

export interface BlockedOptions extends PrepareOptions {
  /** Rows and columns per block (default 256). */
  blockSize?: number;
  /** CPU threads for the products (default: the engine's default). */
  threads?: number;
}

export function prepareHessianBlocked(H: Float32Array | Float64Array, n: number, opts: BlockedOptions): PreparedHessian {
  const walk = hessianWalk(H, n, opts);
  const nb = Math.max(1, Math.min(n, opts.blockSize ?? 256));
  const be = Backend.create({ device: 'cpu', threads: opts.threads });
  const runner = new GraphRunner(be);
  const store = new GgmlContext(be.lib, 3);
  const M = store.newTensor('F32', [n, n], 'gptq.chol');
  const liT = store.newTensor('F32', [nb * nb], 'gptq.inv_diag');
  const liTT = store.newTensor('F32', [nb * nb], 'gptq.inv_diag_t');
  const buf = be.allocContext(store);
  try {
    return dampedFactor(n, walk, opts, (lambda) => factor(lambda));
  } finally {
    runner.free();
    buf.free();
    store.free();
    be.free();
  }

  function factor(lambda: number): Float32Array | undefined {
    const { perm, dead, diag, mean } = walk;
    // P = J·A·J, lower triangle (the upper starts at 0: it becomes Xᵀ)
    const R = Math.max(1, Math.min(n, Math.floor((16 << 20) / (4 * n))));
    const rows = new Float32Array(R * n);
    for (let i0 = 0; i0 < n; i0 += R) {
      const i1 = Math.min(n, i0 + R);
      rows.fill(0);
      for (let i = i0; i < i1; i++) {
        const pi = perm[n - 1 - i]!, ro = (i - i0) * n;
        for (let k = 0; k < i; k++) {
          const pk = perm[n - 1 - k]!;
          rows[ro + k] = dead[pi] || dead[pk] ? 0 : H[pi * n + pk]!;
        }
        rows[ro + i] = diag[pi]! + lambda * mean;
      }
      be.setData(M, rows.subarray(0, (i1 - i0) * n), i0 * n * 4);
    }
    const inv: Float64Array[] = [];
    const block = new Float32Array(nb * nb);
    const setInv = (li: Float64Array, b: number) => {
      for (let k = 0; k < b * b; k++) block[k] = li[k]!;
      be.setData(liT, block.subarray(0, b * b));
      for (let i = 0; i < b; i++) for (let j = 0; j < b; j++) block[j * b + i] = li[i * b + j]!;
      be.setData(liTT, block.subarray(0, b * b));
    };
    const row32 = new Float32Array(nb);
    const bytes = new Uint8Array(row32.buffer);

    // Cholesky: P = M·Mᵀ
    for (let k0 = 0; k0 < n; k0 += nb) {
      const k1 = Math.min(n, k0 + nb), b = k1 - k0, m = n - k1;
      const D = new Float64Array(b * b);
      for (let i = 0; i < b; i++) {
        be.getBytes(M, ((k0 + i) * n + k0) * 4, (i + 1) * 4, bytes);
        for (let j = 0; j <= i; j++) D[i * b + j] = row32[j]!;
      }
      if (!choleskyLower(D, b)) return undefined;
      const li = invertLower(D, b);
      inv.push(li);
      if (m === 0) break;
      setInv(li, b);
      const strips = Math.ceil(m / nb);
      const ctx = new GgmlContext(be.lib, 8 + 8 * strips, 16 + 8 * strips);
      try {
        const panel = ctx.view(M, [b, m], [n * 4], (k1 * n + k0) * 4);
        // L21 = A21·L11⁻ᵀ: row i of the result is row k1+i of M's panel
        const l21 = ctx.mulMat(ctx.view(liT, [b, b], [b * 4], 0), ctx.cont(panel));
        const outs: Tensor[] = [ctx.cpy(l21, panel)];
        for (let j0 = k1; j0 < n; j0 += nb) {
          const j1 = Math.min(n, j0 + nb);
          const a = ctx.view(l21, [b, j1 - j0], [b * 4], (j0 - k1) * b * 4);
          const below = ctx.view(l21, [b, n - j0], [b * 4], (j0 - k1) * b * 4);
          const t = ctx.view(M, [j1 - j0, n - j0], [n * 4], (j0 * n + j0) * 4);
          outs.push(ctx.cpy(ctx.sub(t, ctx.mulMat(a, below)), t));
        }
        run(ctx, outs);
      } finally {
        ctx.free();
      }
    }

    // X = M⁻¹, Xᵀ into the strict upper triangle: row c of Xᵀ is column c of X
    for (let k0 = 0, kb = 0; k0 < n; k0 += nb, kb++) {
      const k1 = Math.min(n, k0 + nb), b = k1 - k0, m = n - k1;
      if (k0 === 0 && m === 0) break;
      setInv(inv[kb]!, b);
      const ctx = new GgmlContext(be.lib, 16, 16);
      try {
        const outs: Tensor[] = [];
        // rows c < k0 of Xᵀ in block column k: X[k, c] = L_kk⁻¹·B[k, c]
        let xt = ctx.view(liTT, [b, b], [b * 4], 0);
        if (k0 > 0) {
          const rhs = ctx.view(M, [b, k0], [n * 4], k0 * 4);
          const above = ctx.mulMat(ctx.view(liT, [b, b], [b * 4], 0), ctx.cont(rhs));
          outs.push(ctx.cpy(above, rhs));
          xt = ctx.concat(above, xt, 1);
        }
        if (m > 0) {
          // B[k1:, c] −= M[k1:, k]·X[k, c] for c < k1, into Bᵀ (rows c, columns k1..n)
          const lk = ctx.view(M, [b, m], [n * 4], (k1 * n + k0) * 4);
          const t = ctx.view(M, [m, k1], [n * 4], k1 * 4);
          outs.push(ctx.cpy(ctx.sub(t, ctx.mulMat(lk, xt)), t));
        }
        run(ctx, outs);
      } finally {
        ctx.free();
      }
    }

    // U[a][c] = X[n−1−a][n−1−c] (a ≤ c) = Xᵀ[n−1−c][n−1−a]: row r of Xᵀ fills column n−1−r of U
    const U = new Float32Array(n * n);
    for (let r0 = 0; r0 < n; r0 += R) {
      const r1 = Math.min(n, r0 + R);
      const chunk = rows.subarray(0, (r1 - r0) * n);
      be.getBytes(M, r0 * n * 4, (r1 - r0) * n * 4, new Uint8Array(chunk.buffer, 0, chunk.byteLength));
      for (let r = r0; r < r1; r++) {
        const col = n - 1 - r, ro = (r - r0) * n;
        const blk = Math.floor(r / nb), d0 = blk * nb, db = Math.min(n, d0 + nb) - d0;
        const li = inv[blk]!;
        // X[i][r] for i in r's diagonal block from f64, past it from Xᵀ's row
        for (let i = r; i < d0 + db; i++) U[(n - 1 - i) * n + col] = li[(i - d0) * db + (r - d0)]!;
        for (let i = d0 + db; i < n; i++) U[(n - 1 - i) * n + col] = chunk[ro + i]!;
      }
    }
    return U;
  }

  function run(ctx: GgmlContext, outs: Tensor[]): void {
    const gf = runner.graph(ctx, outs);
    runner.alloc(gf);
    runner.compute(gf);
  }
}
