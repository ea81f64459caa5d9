// `qtk quantize --method gptq`: llama-quantize's per-tensor types unchanged, each matmul weight rounded by
// GPTQ inside its ggml blocks, with Hessians collected true-sequentially while the tensors are written in
// llama.cpp's order (layer by layer): layer i's inputs come from layers 0..i−1 as already quantized.
import { promises as fs } from 'node:fs';
import { GGML_TYPES, QtkError, assertOutputNotInput, type GgmlTypeName } from '@qtk/core';
import { defaultOutputPath, quantizeGguf, resolvePreset, type QuantizeOptions, type QuantizeResult, type TensorRounding } from '../quantize-gguf.js';
import type { CalibrationOptions } from './calibrate.js';
import { blockGrid } from './grids.js';
import { prepareHessian, type PreparedHessian } from './hessian.js';
import { SequentialCalibration, type LayerHessian } from './sequential.js';
import { gptqQuantizeRows } from './solver.js';

export interface GptqOptions extends CalibrationOptions {
  /** Fraction of mean(diag H) added to the diagonal (default 0.01). */
  damp?: number;
  /** Columns per lazy batch (default 128). */
  block?: number;
  actOrder?: boolean;
}

/** Where GPTQ gets each weight's Hessian, and where it reports the values ggml will dequantize. */
export interface HessianSource {
  hessian(name: string): Promise<LayerHessian | undefined>;
  quantizedRows?(name: string, ne: readonly number[], row: number, values: Float32Array): void;
}

/** The GPTQ rounding for quantizeGguf; one prepared Hessian is kept for the tensors sharing it. */
export function gptqRounding(source: HessianSource, o: GptqOptions, log: (line: string) => void): TensorRounding {
  let cached: { key: string; h: PreparedHessian } | undefined;
  return {
    method: 'gptq',
    async forTensor(name: string, type: GgmlTypeName, ne: readonly number[]) {
      const G = GGML_TYPES[type].blockSize;
      if (!blockGrid(type) || ne.length > 2) return undefined;
      const hf = await source.hessian(name);
      if (!hf || ne[0] !== hf.nIn || hf.nIn % G !== 0) return undefined;
      const key = `${hf.key}:${G}`;
      if (cached?.key !== key) {
        cached = { key, h: prepareHessian(hf.H, hf.nIn, { damp: o.damp, groupSize: G, actOrder: o.actOrder }) };
        if (cached.h.damp > (o.damp ?? 0.01)) log(`notice: ${name}: Hessian needed damping ${cached.h.damp} to be positive definite`);
      }
      const h = cached.h;
      let row = 0;
      return async (src, dst, nRows) => {
        const r = gptqQuantizeRows(type, src, nRows, h, { block: o.block, dequantized: source.quantizedRows !== undefined }, dst);
        if (r.dequantized) source.quantizedRows!(name, ne, row, r.dequantized);
        row += nRows;
      };
    },
  };
}

export async function quantizeGptq(opts: QuantizeOptions & GptqOptions): Promise<QuantizeResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const output = opts.output ?? defaultOutputPath(opts.input, resolvePreset({ preset: opts.preset, bits: opts.bits }));
  await assertOutputNotInput(output, [opts.input, opts.calib]);
  if (!opts.force && (await fs.stat(output).then(() => true, () => false))) {
    throw new QtkError(`${output}: already exists. Pass --force to overwrite it, or choose another output path`, { file: output });
  }
  if (opts.imatrix) throw new QtkError('--imatrix and --method gptq both given: GPTQ takes its importance from the calibration Hessians. Drop --imatrix');
  const cal = await SequentialCalibration.open(opts.input, opts);
  try {
    log(`gptq: calibrating on ${cal.tokens} tokens (${cal.windowCount} windows), layer by layer through the quantized layers`);
    return await quantizeGguf({ ...opts, output, rounding: gptqRounding(cal, opts, log) });
  } finally {
    cal.close();
  }
}
