// Entry point of `qtk export hf` (the CLI only parses flags and calls this).
import { parseLoraSpec } from '@qtk/engine';
import { assertOutputNotInput, enumArg } from '../adapter/cli-policy.js';
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
  await assertOutputNotInput(a.output, [a.gguf, a.hf, ...specs.map((s) => s.path)], { flag: '--output' });
  const r = await exportHf({
    gguf: a.gguf, hf: a.hf, output: a.output, adapters: specs, overwrite: a.force,
    dtype: dtype === undefined ? undefined : ({ f32: 'F32', f16: 'F16', bf16: 'BF16' } as const)[dtype],
    log: (l) => process.stderr.write(l + '\n'),
  });
  out(`${a.output}: Hugging Face checkpoint, ${r.tensors} tensors (${r.copied} copied from ${a.hf}), ${(r.bytes / 1e6).toFixed(1)} MB in ${r.files.filter((f) => f.endsWith('.safetensors')).length} shard(s)`);
}
