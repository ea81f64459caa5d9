// `qtk quantize in.gguf out.gguf --fit 14GiB`: the per-tensor types that fit a byte budget with the least
// expected error. Pass 1 measures each candidate type's error per tensor (measure.ts); the allocation
// (allocate.ts) picks the types; pass 2 is an ordinary quantization with those types, so the output is a
// plain GGUF, with the mix recorded under quantize.fit.*.
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GgufReader, QtkError, assertOutputNotInput, createProgress, describeGguf, servingMemory, type GgmlTypeName } from '@qtk/core';
import { createRowQuantizer, type EngineName } from '../engine.js';
import { imatrixFor, readImatrix } from '../imatrix.js';
import { PLAN_PRESETS, presetSize } from '../plan/sizes.js';
import { quantizeGguf, type QuantizeResult } from '../quantize-gguf.js';
import type { PresetName } from '../presets.js';
import { allocate, minimumBytes } from './allocate.js';
import { fitCandidates, type FitTensor } from './candidates.js';
import { measureErrors } from './measure.js';

export interface FitOptions {
  input: string;
  output?: string;
  /** Bytes the output file (plus, with ctx, the KV cache, recurrent state and compute buffer) may take. */
  budget: number;
  imatrix?: string;
  /** Also budget llama.cpp's context memory at this context length (one sequence, f16 KV). */
  ctx?: number;
  threads?: number;
  force?: boolean;
  engine?: 'auto' | EngineName;
  log?: (line: string) => void;
}

export interface FitChoice {
  name: string;
  type: GgmlTypeName;
  bytes: number;
  error: number;
}

export interface FitResult {
  quantize: QuantizeResult;
  budget: number;
  /** Bytes the budget keeps for context memory (0 without --ctx). */
  contextBytes: number;
  fileBytes: number;
  /** Σ measured error of the chosen types. */
  error: number;
  choices: FitChoice[];
  /** How many tensors got each type. */
  mix: Record<string, number>;
}

const GIB = 1024 ** 3;
const fmt = (b: number) => `${(b / GIB).toFixed(3)} GiB (${b} bytes)`;
/** Metadata bytes per tensor for quantize.fit.types ("name=TYPE" strings) and the other keys. */
const fitMetadataBytes = (tensors: readonly FitTensor[]) => 512 + tensors.reduce((s, t) => s + 8 + t.name.length + 8, 0);

export function defaultFitOutput(input: string, budget: number): string {
  const stem = path.basename(input).replace(/\.gguf$/i, '').replace(/-(f16|bf16|f32)$/i, '');
  return path.join(path.dirname(input), `${stem}-fit-${(budget / GIB).toFixed(2)}GiB.gguf`);
}

export async function fitGguf(opts: FitOptions): Promise<FitResult> {
  const log = opts.log ?? ((s: string) => process.stderr.write(s + '\n'));
  // Refuse a bad output before the measuring pass, not after it.
  const output = opts.output ?? defaultFitOutput(opts.input, opts.budget);
  await assertOutputNotInput(output, [opts.input, opts.imatrix]);
  if (!opts.force && (await fs.stat(output).catch(() => undefined))) {
    throw new QtkError(`${output}: already exists. Pass --force to replace it, or choose another output name`, { file: output });
  }
  const imatrix = opts.imatrix ? await readImatrix(opts.imatrix) : undefined;
  const reader = await GgufReader.open(opts.input);
  let tensors: FitTensor[], errors: number[][], contextBytes = 0, headerBytes: number, preset: PresetName;
  try {
    const model = describeGguf(opts.input, reader, reader.tensors, reader.dataOffset);
    if (opts.ctx !== undefined) {
      const m = servingMemory(model.shape, 0, { ctx: opts.ctx, parallel: 1, kvType: 'f16' });
      contextBytes = m.kvCache + m.recurrentState + m.compute;
    }
    tensors = reader.tensors.map((t) => fitCandidates(t));
    headerBytes = reader.dataOffset + fitMetadataBytes(tensors);
    const min = minimumBytes(tensors) + headerBytes + contextBytes;
    if (opts.budget < min) {
      throw new QtkError(
        `--fit ${fmt(opts.budget)} is below the smallest this model can be: ${fmt(min)} (every quantizable tensor at its smallest type${contextBytes ? `, plus ${fmt(contextBytes)} of context memory at --ctx ${opts.ctx}` : ''}). ` +
          `Pass --fit ${Math.ceil((min / GIB) * 100) / 100}GiB or more${contextBytes ? ', or a smaller --ctx' : ''}`,
        { file: opts.input },
      );
    }
    // The preset recorded as general.file_type: the largest one that fits the budget (display only).
    const sizes = PLAN_PRESETS.map((p) => presetSize(model, p));
    preset = (sizes.find((s) => s.fileBytes + contextBytes <= opts.budget) ?? sizes[sizes.length - 1]!).preset;

    const engine = createRowQuantizer(opts.engine ?? 'auto', Math.max(1, Math.floor(opts.threads ?? os.availableParallelism())));
    const progress = createProgress({ title: 'fit: measuring errors', total: tensors.length, kind: 'count', unit: 'tensors' });
    errors = [];
    for (const t of tensors) {
      const w = imatrix ? imatrixFor(imatrix, opts.input, t.name, t.ne) : undefined;
      errors.push(await measureErrors(reader, t, engine, w));
      progress.tick(1, t.name);
    }
    progress.done();
  } finally {
    await reader.close();
  }

  const tensorBudget = opts.budget - headerBytes - contextBytes;
  const alloc = allocate(tensors.map((t, i) => ({ bytes: t.bytes, error: errors[i]! })), tensorBudget);
  const choices: FitChoice[] = tensors.map((t, i) => {
    const k = alloc.choice[i]!;
    return { name: t.name, type: t.candidates[k]!, bytes: t.bytes[k]!, error: errors[i]![k]! };
  });
  const overrides = choices.filter((c, i) => tensors[i]!.candidates.length > 1)
    .map((c) => `^${c.name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$=${c.type}`);
  const quantize = await quantizeGguf({
    input: opts.input, output, preset, imatrix: opts.imatrix, tensorTypes: overrides, threads: opts.threads, force: opts.force, engine: opts.engine, log,
    metadata: (w) => {
      w.add('quantize.fit.budget', 'UINT64', BigInt(opts.budget));
      w.add('quantize.fit.context_bytes', 'UINT64', BigInt(contextBytes));
      w.add('quantize.fit.error', 'FLOAT64', alloc.error);
      w.add('quantize.fit.imatrix', 'BOOL', imatrix !== undefined);
      w.addArray('quantize.fit.types', 'STRING', choices.filter((_, i) => tensors[i]!.candidates.length > 1).map((c) => `${c.name}=${c.type}`));
    },
  });
  const fileBytes = (await fs.stat(output)).size;
  if (fileBytes + contextBytes > opts.budget) {
    await fs.rm(output, { force: true });
    throw new Error(`internal: --fit wrote ${fileBytes} bytes for a budget of ${opts.budget - contextBytes}; the output was removed`);
  }
  const mix: Record<string, number> = {};
  for (const [i, c] of choices.entries()) if (tensors[i]!.candidates.length > 1) mix[c.type] = (mix[c.type] ?? 0) + 1;
  return { quantize, budget: opts.budget, contextBytes, fileBytes, error: alloc.error, choices, mix };
}

export function formatFitReport(r: FitResult): string {
  const mix = Object.entries(r.mix).sort().map(([t, n]) => `${t} ×${n}`).join(', ');
  return [
    ...r.choices.map((c) => `${c.name.padEnd(36)} ${c.type.padEnd(7)} ${(c.bytes / 1048576).toFixed(2).padStart(9)} MiB  err ${c.error.toExponential(3)}`),
    `fit: ${fmt(r.fileBytes)} for a budget of ${fmt(r.budget)}${r.contextBytes ? ` (${fmt(r.contextBytes)} kept for context memory)` : ''}; mix ${mix}; Σ error ${r.error.toExponential(4)}`,
    `wrote ${r.quantize.output}`,
  ].join('\n');
}

export async function fitMain(args: FitOptions & { quiet?: boolean; preset?: string; bits?: number }): Promise<FitResult> {
  if (args.preset !== undefined || args.bits !== undefined) throw new QtkError('--fit chooses every tensor\'s type itself; leave out --type and --bits');
  const r = await fitGguf(args);
  if (!args.quiet) process.stdout.write(formatFitReport(r) + '\n');
  return r;
}
