// Calibration for GPTQ: the model runs over calibration text once per layer, each pass collecting only that
// layer's Hessians (so memory holds one layer's), which go to f32 files in a scratch folder the quantizer
// reads tensor by tensor. Hessians come from the unquantized model (not true-sequential); `qtk export gptq`
// uses it, `qtk quantize --method gptq` calibrates true-sequentially (sequential.ts).
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { GgufReader, QtkError, createProgress } from '@qtk/core';
import { HessianCollector, Model, contextWindows, loadEvalData, readModelParams } from '@qtk/engine';

export interface CalibrationOptions {
  /** Text file, `qtk dataset build` folder or .arrow split. */
  calib: string;
  /** Calibration tokens (default 32768). */
  tokens?: number;
  /** Window length (default 512). */
  ctx?: number;
  threads?: number;
  /** Also collect output.weight's Hessian (default true; skipped when the output is tied to token_embd). */
  calibOutput?: boolean;
}

export interface HessianFile {
  file: string;
  nIn: number;
  count: number;
}

export interface CalibrationResult {
  /** Weight name → its (possibly shared) Hessian file. */
  byWeight: Map<string, HessianFile>;
  tokens: number;
  windows: number;
}

/** Runs calibration and writes each distinct Hessian H = 2XᵀX/n as raw f32 into `dir`. */
export async function collectHessians(model: string, dir: string, o: CalibrationOptions): Promise<CalibrationResult> {
  const nCtx = o.ctx ?? 512;
  const reader = await GgufReader.open(model);
  let nVocab: number, nLayer: number;
  try {
    const p = readModelParams(reader);
    nVocab = p.nVocab;
    nLayer = p.nLayer;
  } finally {
    await reader.close();
  }
  const data = await loadEvalData(model, nVocab, { data: o.calib, maxTokens: o.tokens ?? 32768 });
  const tokens = data.tokens.slice(0, o.tokens ?? 32768);
  const windows = contextWindows({ ...data, tokens }, Math.min(nCtx, Math.floor(tokens.length / 2)), data.source);
  const m = await Model.load(model, { threads: o.threads });
  const byWeight = new Map<string, HessianFile>();
  const passes: ((name: string) => boolean)[] = [];
  for (let il = 0; il < nLayer; il++) passes.push((name) => name.startsWith(`blk.${il}.`));
  if (o.calibOutput !== false && m.weights.tensors.has('output.weight')) passes.push((name) => name === 'output.weight');
  const progress = createProgress({ title: 'gptq calibration', total: passes.length * windows.length, kind: 'count', unit: 'windows' });
  try {
    const s = m.session({ nCtx: windows[0]!.length, nBatch: windows[0]!.length });
    try {
      for (let pass = 0; pass < passes.length; pass++) {
        const col = new HessianCollector(passes[pass]!);
        const hooks = col.hooks();
        for (const w of windows) {
          s.reset();
          // the output matmul is only built for positions whose logits are asked for
          s.eval(w, { logits: pass >= nLayer ? 'all' : 'none', hooks });
          progress.tick(1, pass < nLayer ? `layer ${pass}` : 'output');
        }
        for (const [key, e] of col.entries) {
          if (!e.sum.every(Number.isFinite)) throw new QtkError(`${model}: non-finite activations reach ${key} on the calibration text. Check the model with qtk eval ppl`, { file: model });
          const file = path.join(dir, `${key}.f32`);
          await fs.writeFile(file, new Uint8Array(HessianCollector.hessian(e).buffer));
          for (const name of e.names) byWeight.set(name, { file, nIn: e.nIn, count: e.count });
        }
      }
    } finally {
      s.free();
    }
  } finally {
    progress.done();
    m.free();
  }
  return { byWeight, tokens: windows.length * windows[0]!.length, windows: windows.length };
}

export async function readHessian(h: HessianFile): Promise<Float32Array> {
  const b = await fs.readFile(h.file);
  return new Float32Array(b.buffer, b.byteOffset, h.nIn * h.nIn);
}
