// Importance matrix: per weight matrix, the sum over tokens of each input column's squared
// activation, with the number of token rows — what llama-imatrix collects (tools/imatrix/imatrix.cpp,
// collect_imatrix) and writes in its GGUF format (save_imatrix), read by common_imatrix_load
// (common/imatrix-loader.cpp) and by qtk quantize --imatrix.
//
// File layout (verified in the bundled llama.cpp source):
//   KV  general.type          STRING  "imatrix"
//   KV  imatrix.datasets      ARRAY[STRING]  data file names
//   KV  imatrix.chunk_count   UINT32  windows evaluated
//   KV  imatrix.chunk_size    UINT32  n_ctx (tokens per window)
//   tensors, sorted by weight name, for each weight W:
//     "<W>.in_sum2"  F32 ne [n_in]  Σ_tokens x_j²  (ggml writes 2-D [n_in, 1] with n_dims 1)
//     "<W>.counts"   F32 ne [1]     token rows summed
// Collected like llama-imatrix: MUL_MAT inputs of weights named blk.* (output.weight only when
// asked), skipping graphs of fewer than 16 tokens.
import { GgufWriter, QtkError } from '@qtk/core';
import type { Backend } from '../ggml/backend.js';
import type { Tensor } from '../ggml/tensor.js';
import type { BuildCtx } from '../model/build.js';
import type { GraphHooks } from '../model/model.js';

export const IMATRIX_KEYS = {
  type: 'general.type',
  datasets: 'imatrix.datasets',
  chunkCount: 'imatrix.chunk_count',
  chunkSize: 'imatrix.chunk_size',
} as const;
export const IMATRIX_SUFFIXES = { sums: '.in_sum2', counts: '.counts' } as const;
/** llama-imatrix ignores matmuls over fewer tokens than this. */
export const IMATRIX_MIN_TOKENS = 16;

export interface ImatrixEntry {
  sums: Float64Array;
  count: number;
}

export class ImatrixCollector {
  readonly entries = new Map<string, ImatrixEntry>();
  private pending: { name: string; t: Tensor; rows: number }[] = [];

  constructor(readonly opts: { processOutput?: boolean } = {}) {}

  wants(name: string): boolean {
    return name.startsWith('blk.') || (Boolean(this.opts.processOutput) && name === 'output.weight');
  }

  /** Graph hooks that add Σ_t x² per matmul input to the graph and read it after compute. */
  hooks(): GraphHooks {
    return {
      mm: (b: BuildCtx, _w: Tensor, x: Tensor, name: string) => {
        const rows = x.ne[1] * x.ne[2] * x.ne[3];
        if (!this.wants(name) || rows < IMATRIX_MIN_TOKENS) return;
        const g = b.g;
        const x2 = g.reshape(g.cont(x), [x.ne[0], rows]);
        const s = g.sumRows(g.cont(g.transpose(g.sqr(x2)))); // [1, n_in]
        b.effects.push(s);
        this.pending.push({ name, t: s, rows });
      },
      afterCompute: (be: Backend) => {
        for (const p of this.pending) {
          const v = be.getF32(p.t);
          let e = this.entries.get(p.name);
          if (!e) this.entries.set(p.name, (e = { sums: new Float64Array(v.length), count: 0 }));
          if (e.sums.length !== v.length) throw new Error(`imatrix: ${p.name} has inputs of ${v.length} and ${e.sums.length} columns`);
          for (let i = 0; i < v.length; i++) e.sums[i]! += v[i]!;
          e.count += p.rows;
        }
        this.pending = [];
      },
    };
  }

  /** Writes llama.cpp's GGUF imatrix through an atomic temp file (GgufWriter). */
  async write(file: string, meta: { datasets: string[]; chunkCount: number; chunkSize: number; overwrite?: boolean; onOpen?: (w: GgufWriter) => void }): Promise<void> {
    if (this.entries.size === 0) throw new QtkError(`${file}: no matmul saw ${IMATRIX_MIN_TOKENS} or more tokens, so there is nothing to write. Use a larger --ctx and more text.`);
    for (const [name, e] of this.entries) {
      if (!e.sums.every(Number.isFinite)) throw new QtkError(`${file}: non-finite activations in ${name}; the model produces inf/NaN on this text. Check the model with qtk eval ppl.`);
    }
    const w = await GgufWriter.create(file, { overwrite: meta.overwrite });
    meta.onOpen?.(w);
    try {
      w.add(IMATRIX_KEYS.type, 'STRING', 'imatrix');
      w.addArray(IMATRIX_KEYS.datasets, 'STRING', meta.datasets);
      w.add(IMATRIX_KEYS.chunkCount, 'UINT32', meta.chunkCount);
      w.add(IMATRIX_KEYS.chunkSize, 'UINT32', meta.chunkSize);
      const names = [...this.entries.keys()].sort();
      for (const n of names) {
        w.addTensorInfo(n + IMATRIX_SUFFIXES.sums, [this.entries.get(n)!.sums.length], 'F32');
        w.addTensorInfo(n + IMATRIX_SUFFIXES.counts, [1], 'F32');
      }
      for (const n of names) {
        const e = this.entries.get(n)!;
        await w.writeTensorData(n + IMATRIX_SUFFIXES.sums, new Uint8Array(Float32Array.from(e.sums).buffer));
        await w.writeTensorData(n + IMATRIX_SUFFIXES.counts, new Uint8Array(Float32Array.of(e.count).buffer));
      }
      await w.finish();
    } catch (e) {
      await w.abort();
      throw e;
    }
  }
}
