// `qtk quantize --method gptq`: llama-quantize's per-tensor types unchanged, each matmul weight rounded by
// GPTQ inside its ggml blocks, with Hessians collected true-sequentially while the tensors are written in
// llama.cpp's order (layer by layer): layer i's inputs come from layers 0..i−1 as already quantized.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GGML_TYPES, QtkError, assertOutputNotInput, ggmlRowBytes, type GgmlTypeName } from '@qtk/core';
import { getCodec } from '../codecs/index.js';
import { defaultOutputPath, quantizeGguf, resolvePreset, type QuantizeOptions, type QuantizeResult, type TensorRounding } from '../quantize-gguf.js';
import type { CalibrationOptions } from './calibrate.js';
import { GptqCheckpoint } from './checkpoint.js';
import { blockGrid } from './grids.js';
import { prepareHessian, type PreparedHessian } from './hessian.js';
import { prepareHessianBlocked } from './hessian-blocked.js';
import { SequentialCalibration, type LayerHessian } from './sequential.js';
import { batchColumns, gptqQuantizeSlabs } from './solve-slabs.js';
import { gptqQuantizeRows } from './solver.js';
import { GgmlTrailingUpdate } from './walk-ggml.js';

export interface GptqOptions extends CalibrationOptions {
  /** Fraction of mean(diag H) added to the diagonal (default 0.01). */
  damp?: number;
  /** Columns per lazy batch (default 128). */
  block?: number;
  actOrder?: boolean;
  /** Keep the finished-tensor folder after a successful run (default: removed). */
  keepCheckpoint?: boolean;
  /** 'fast' (default): blocked factorization and slab walk with ggml products; 'reference': the f64
   *  TypeScript reference, one row at a time. */
  solver?: 'fast' | 'reference';
}

/** Rows the fast solver walks together, and columns per inner batch (the batch's bulk as products). */
const SLAB_ROWS = 128;
const INNER = 64;

/** Where GPTQ gets each weight's Hessian, and where it reports the values ggml will dequantize. */
export interface HessianSource {
  hessian(name: string): Promise<LayerHessian | undefined>;
  quantizedRows?(name: string, ne: readonly number[], row: number, values: Float32Array): void;
}

/** The GPTQ rounding for quantizeGguf; one prepared Hessian is kept for the tensors sharing it. */
export function gptqRounding(source: HessianSource, o: GptqOptions, log: (line: string) => void, checkpoint?: GptqCheckpoint): TensorRounding & { restored: number; close(): void } {
  const fast = o.solver !== 'reference';
  let cached: { key: string; h: PreparedHessian; update?: GgmlTrailingUpdate } | undefined;
  const self = {
    method: 'gptq',
    restored: 0,
    close() {
      cached?.update?.free();
      cached = undefined;
    },
    async forTensor(name: string, type: GgmlTypeName, ne: readonly number[]) {
      const G = GGML_TYPES[type].blockSize;
      if (!blockGrid(type) || ne.length > 2) return undefined;
      const rowBytes = ggmlRowBytes(type, ne[0]!);
      const total = rowBytes * (ne[1] ?? 1);
      const saved = await checkpoint?.load(name, type, total);
      if (saved) {
        // a finished tensor of an earlier run: its bytes, and its values for the calibration stream
        self.restored++;
        const codec = getCodec(type)!;
        let row = 0;
        return async (_src: Float32Array, dst: Uint8Array, nRows: number) => {
          dst.set(saved.subarray(row * rowBytes, (row + nRows) * rowBytes));
          if (source.quantizedRows) {
            const v = new Float32Array(nRows * ne[0]!);
            codec.dequantizeBlocks(dst, v, v.length);
            source.quantizedRows(name, ne, row, v);
          }
          row += nRows;
        };
      }
      const hf = await source.hessian(name);
      if (!hf || ne[0] !== hf.nIn || hf.nIn % G !== 0) return undefined;
      const key = `${hf.key}:${G}`;
      if (cached?.key !== key) {
        self.close();
        const po = { damp: o.damp, groupSize: G, actOrder: o.actOrder };
        const h = fast ? prepareHessianBlocked(hf.H, hf.nIn, { ...po, threads: o.threads }) : prepareHessian(hf.H, hf.nIn, po);
        // the key holds the block size, so every tensor under it walks the same batches
        cached = { key, h, update: fast ? new GgmlTrailingUpdate(h, { batch: batchColumns(o.block, G), slabRows: SLAB_ROWS, threads: o.threads }) : undefined };
        if (h.damp > (o.damp ?? 0.01)) log(`notice: ${name}: Hessian needed damping ${h.damp} to be positive definite`);
      }
      const { h, update } = cached;
      let row = 0;
      const all = checkpoint ? new Uint8Array(total) : undefined;
      return async (src: Float32Array, dst: Uint8Array, nRows: number) => {
        const so = { block: o.block, dequantized: source.quantizedRows !== undefined };
        const r = update ? gptqQuantizeSlabs(type, src, nRows, h, { ...so, update, slabRows: SLAB_ROWS, inner: INNER }, dst) : gptqQuantizeRows(type, src, nRows, h, so, dst);
        if (r.dequantized) source.quantizedRows!(name, ne, row, r.dequantized);
        all?.set(dst.subarray(0, nRows * rowBytes), row * rowBytes);
        row += nRows;
        if (all && row === (ne[1] ?? 1)) await checkpoint!.save(name, type, all);
      };
    },
  };
  return self;
}

export async function quantizeGptq(opts: QuantizeOptions & GptqOptions): Promise<QuantizeResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const output = opts.output ?? defaultOutputPath(opts.input, resolvePreset({ preset: opts.preset, bits: opts.bits }));
  await assertOutputNotInput(output, [opts.input, opts.calib]);
  if (!opts.force && (await fs.stat(output).then(() => true, () => false))) {
    throw new QtkError(`${output}: already exists. Pass --force to overwrite it, or choose another output path`, { file: output });
  }
  if (opts.imatrix) throw new QtkError('--imatrix and --method gptq both given: GPTQ takes its importance from the calibration Hessians. Drop --imatrix');
  const st = await fs.stat(opts.input);
  const checkpoint = await GptqCheckpoint.open(`${path.resolve(output)}.gptq-checkpoint`, {
    input: path.resolve(opts.input), size: st.size, mtimeMs: st.mtimeMs, preset: opts.preset ?? null, bits: opts.bits ?? null,
    calib: path.resolve(opts.calib), tokens: opts.tokens ?? null, ctx: opts.ctx ?? null, calibOutput: opts.calibOutput ?? null,
    damp: opts.damp ?? null, block: opts.block ?? null, actOrder: Boolean(opts.actOrder), solver: opts.solver ?? 'fast',
  });
  if (checkpoint.reused > 0) log(`gptq: resuming with ${checkpoint.reused} finished tensors from ${checkpoint.dir}`);
  const cal = await SequentialCalibration.open(opts.input, opts);
  let ok = false;
  const rounding = gptqRounding(cal, opts, log, checkpoint);
  try {
    log(`gptq: calibrating on ${cal.tokens} tokens (${cal.windowCount} windows), layer by layer through the quantized layers`);
    const r = await quantizeGguf({ ...opts, output, rounding });
    if (rounding.restored > 0) log(`gptq: ${rounding.restored} tensors reused from the checkpoint`);
    ok = true;
    return r;
  } finally {
    rounding.close();
    cal.close();
    if (ok && !opts.keepCheckpoint) await checkpoint.remove();
    else if (!ok) log(`gptq: finished tensors are kept in ${checkpoint.dir}; the same command resumes from them`);
  }
}
