// Entry points of `qtk export hf` and `qtk export gptq` (the CLI only parses flags and calls this).
import { parseLoraSpec } from '@qtk/engine';
import { assertOutputNotInput, enumArg, intArg, numberArg, QtkError } from '@qtk/core';
import { GPTQ_FORMAT } from '@qtk/quantize';
import { exportGptq } from './gptq.js';
import { exportHf } from './hf.js';

export interface ExportHfArgs {
  gguf: string;
  hf: string;
  output: string;
  lora?: readonly string[];
  dtype?: string;
  force?: boolean;
  out?: (line: string) => void;
}

export async function exportHfMain(a: ExportHfArgs): Promise<void> {
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const dtype = enumArg('--dtype', a.dtype, ['f32', 'f16', 'bf16'] as const);
  const specs = (a.lora ?? []).map(parseLoraSpec);
  await assertOutputNotInput(a.output, [a.gguf, a.hf, ...specs.map((s) => s.path)], { flag: '--output', kind: 'dir' });
  const r = await exportHf({
    gguf: a.gguf, hf: a.hf, output: a.output, adapters: specs, overwrite: a.force,
    dtype: dtype === undefined ? undefined : ({ f32: 'F32', f16: 'F16', bf16: 'BF16' } as const)[dtype],
    log: (l) => process.stderr.write(l + '\n'),
  });
  out(`${a.output}: Hugging Face checkpoint, ${r.tensors} tensors (${r.copied} copied from ${a.hf}), ${(r.bytes / 1e6).toFixed(1)} MB in ${r.files.filter((f) => f.endsWith('.safetensors')).length} shard(s)`);
}

export interface ExportGptqArgs {
  input: string;
  hf?: string;
  output: string;
  calib?: string;
  bits?: unknown;
  groupSize?: unknown;
  descAct?: boolean;
  calibTokens?: unknown;
  ctx?: unknown;
  damp?: unknown;
  block?: unknown;
  threads?: unknown;
  force?: boolean;
  out?: (line: string) => void;
}

export async function exportGptqMain(a: ExportGptqArgs): Promise<void> {
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const bits = enumArg('--bits', a.bits === undefined ? undefined : String(a.bits), GPTQ_FORMAT.bits.map(String) as readonly string[]);
  const groupSize = enumArg('--group-size', a.groupSize === undefined ? undefined : String(a.groupSize), GPTQ_FORMAT.groupSizes.map(String) as readonly string[]);
  const calibTokens = intArg('calib-tokens', a.calibTokens, { min: 16 });
  const ctx = intArg('ctx', a.ctx, { min: 8, max: 131_072 });
  const damp = numberArg('damp', a.damp, { min: 0, max: 10 });
  const block = intArg('block', a.block, { min: 1, max: 65_536 });
  const threads = intArg('threads', a.threads, { min: 1, max: 1024 });
  if (!a.calib) throw new QtkError('qtk export gptq needs --calib <text file | qtk dataset folder>: GPTQ rounds with the Hessians of calibration activations.');
  await assertOutputNotInput(a.output, [a.input, a.calib, ...(a.hf ? [a.hf] : [])], { flag: '--output', kind: 'dir' });
  const r = await exportGptq({
    input: a.input, hf: a.hf, output: a.output, calib: a.calib, bits: bits === undefined ? undefined : Number(bits),
    groupSize: groupSize === undefined ? undefined : Number(groupSize), descAct: a.descAct, calibTokens, ctx, damp, block, threads,
    overwrite: a.force, log: (l) => process.stderr.write(l + '\n'),
  });
  out(`${a.output}: GPTQ checkpoint, ${r.quantized.length} linears quantized (calibrated on ${r.calibTokens} tokens), ${r.kept} tensors kept, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.files.filter((f) => f.endsWith('.safetensors')).length} shard(s)`);
}
