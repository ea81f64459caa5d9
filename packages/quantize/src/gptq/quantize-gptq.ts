// `qtk quantize --method gptq`: calibrate (Hessians per matmul input, one layer per pass), then quantize with
// llama-quantize's per-tensor types unchanged, each matmul weight rounded by GPTQ inside its ggml blocks.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GGML_TYPES, QtkError, assertOutputNotInput, onInterrupt, type GgmlTypeName } from '@qtk/core';
import { defaultOutputPath, quantizeGguf, resolvePreset, type QuantizeOptions, type QuantizeResult, type TensorRounding } from '../quantize-gguf.js';
import { collectHessians, readHessian, type CalibrationOptions, type HessianFile } from './calibrate.js';
import { blockGrid } from './grids.js';
import { prepareHessian, type PreparedHessian } from './hessian.js';
import { gptqQuantizeRows } from './solver.js';

export interface GptqOptions extends CalibrationOptions {
  /** Fraction of mean(diag H) added to the diagonal (default 0.01). */
  damp?: number;
  /** Columns per lazy batch (default 128). */
  block?: number;
  actOrder?: boolean;
}

/** The GPTQ rounding for quantizeGguf, over Hessian files; one prepared Hessian is kept for the tensors sharing it. */
export function gptqRounding(byWeight: ReadonlyMap<string, HessianFile>, o: GptqOptions, log: (line: string) => void): TensorRounding {
  let cached: { key: string; h: PreparedHessian } | undefined;
  return {
    method: 'gptq',
    async forTensor(name: string, type: GgmlTypeName, ne: readonly number[]) {
      const hf = byWeight.get(name);
      const G = GGML_TYPES[type].blockSize;
      if (!hf || !blockGrid(type) || ne.length > 2 || ne[0] !== hf.nIn || hf.nIn % G !== 0) return undefined;
      const key = `${hf.file}:${G}`;
      if (cached?.key !== key) {
        cached = { key, h: prepareHessian(await readHessian(hf), hf.nIn, { damp: o.damp, groupSize: G, actOrder: o.actOrder }) };
        if (cached.h.damp > (o.damp ?? 0.01)) log(`notice: ${name}: Hessian needed damping ${cached.h.damp} to be positive definite`);
      }
      const h = cached.h;
      return async (src, dst, nRows) => { gptqQuantizeRows(type, src, nRows, h, { block: o.block }, dst); };
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
  const dir = await fs.mkdtemp(path.join(path.dirname(path.resolve(output)), `.${path.basename(output)}.hessians-`));
  // the GGUF writer removes its own temp file; the Hessian files are ours to remove
  const off = onInterrupt(async () => { await fs.rm(dir, { recursive: true, force: true }); return `removed ${dir}`; }, 'gptq calibration');
  try {
    const cal = await collectHessians(opts.input, dir, opts);
    log(`gptq: ${cal.byWeight.size} weights calibrated on ${cal.tokens} tokens (${cal.windows} windows)`);
    return await quantizeGguf({ ...opts, output, rounding: gptqRounding(cal.byWeight, opts, log) });
  } finally {
    off();
    await fs.rm(dir, { recursive: true, force: true });
  }
}
