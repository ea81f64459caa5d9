// Entry points of `qtk lora convert` and `qtk lora merge` (the CLI only parses flags and calls these).
import { promises as fs } from 'node:fs';
import * as path from 'node:path';
import { QtkError, readGgufLora, writeGgufLora } from '@qtk/core';
import { parseLoraSpec } from '@qtk/engine';
import { openAdapterBase } from './base.js';
import { assertOutputNotInput, enumArg, numberArg } from './cli-policy.js';
import { checkAdapterArch, ggufToPeft, peftToGguf } from './convert.js';
import { mergeLora, type MergeOutType, type MergeResult } from './merge.js';
import { peftConfigFor, readPeftAdapter, writePeftAdapter } from './peft.js';

export interface LoraConvertArgs {
  input: string;
  base: string;
  output: string;
  /** 'gguf' (default for a PEFT folder) or 'peft' (default for a .gguf). */
  to?: string;
  force?: boolean;
  out?: (line: string) => void;
}

export async function loraConvertMain(a: LoraConvertArgs): Promise<{ pairs: number; to: 'gguf' | 'peft' }> {
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  const stat = await fs.stat(a.input).catch((e: Error) => {
    throw new QtkError(`${a.input}: cannot be read (${e.message}). Pass a PEFT adapter folder or a GGUF LoRA file.`, { file: a.input });
  });
  const to = enumArg('--to', a.to, ['gguf', 'peft'] as const) ?? (stat.isDirectory() ? 'gguf' : 'peft');
  await assertOutputNotInput(a.output, [a.input, a.base], { flag: '--output' });
  const base = await openAdapterBase(a.base);
  if (to === 'gguf') {
    if (!stat.isDirectory()) throw new QtkError(`${a.input}: --to gguf converts a PEFT adapter folder, got a file. Pass the folder with adapter_config.json, or --to peft.`, { file: a.input });
    const peft = await readPeftAdapter(a.input);
    const pairs = peftToGguf(base, peft.modules, a.input);
    await writeGgufLora(a.output, base.arch.ggufArch, pairs, { overwrite: a.force, name: path.basename(path.resolve(a.input)) });
    out(`${a.output}: GGUF LoRA for ${base.arch.ggufArch}, ${pairs.length} tensors adapted (from ${a.input})`);
    return { pairs: pairs.length, to };
  }
  if (stat.isDirectory()) throw new QtkError(`${a.input}: --to peft converts a GGUF LoRA file, got a folder. Pass the .gguf adapter, or --to gguf.`, { file: a.input });
  const g = await readGgufLora(a.input);
  checkAdapterArch(a.input, g.arch, base);
  const modules = ggufToPeft(base, g.pairs, a.input);
  await writePeftAdapter(a.output, peftConfigFor(modules, { baseModel: a.base }), modules, { overwrite: a.force });
  out(`${a.output}: PEFT adapter, ${modules.length} modules (from ${a.input})`);
  return { pairs: modules.length, to };
}

export interface LoraMergeArgs {
  base: string;
  /** Adapters as FILE[:SCALE]: PEFT folders or GGUF LoRA files. */
  adapters: readonly string[];
  output: string;
  outtype?: string;
  /** Multiplies every adapter's scale (default 1). */
  scale?: number | string;
  force?: boolean;
  out?: (line: string) => void;
}

export async function loraMergeMain(a: LoraMergeArgs): Promise<MergeResult> {
  const out = a.out ?? ((l: string) => process.stdout.write(l + '\n'));
  if (a.adapters.length === 0) throw new QtkError('qtk lora merge: no adapter given. Pass a PEFT folder or a GGUF LoRA file after the base model.');
  const s = numberArg('--scale', a.scale, { min: -100, max: 100 }) ?? 1;
  const outtype = enumArg('--outtype', a.outtype, ['f32', 'f16', 'bf16'] as const) as MergeOutType | undefined;
  const specs = a.adapters.map(parseLoraSpec);
  await assertOutputNotInput(a.output, [a.base, ...specs.map((x) => x.path)], { flag: '--output' });
  const r = await mergeLora({
    base: a.base,
    adapters: specs.map((x) => ({ path: x.path, scale: (x.scale ?? 1) * s })),
    output: a.output,
    outtype,
    overwrite: a.force,
    log: (l) => process.stderr.write(l + '\n'),
  });
  out(`${a.output}: ${r.merged} tensors merged, ${r.copied} copied (${(r.bytes / 1e6).toFixed(1)} MB of base weights)`);
  return r;
}
