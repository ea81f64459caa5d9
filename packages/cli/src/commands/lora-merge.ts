import type { Argv } from 'yargs';

export const loraMergeCommand = {
  command: 'merge <base> <adapters..>',
  describe: 'Merge LoRA adapters into a base GGUF: W + s·scale·B·A in f32, tensor by tensor, written as an ordinary GGUF',
  builder: (y: Argv) =>
    y
      .positional('base', { type: 'string', demandOption: true, describe: 'base .gguf (F32/F16/BF16; a quantized base is dequantized)' })
      .positional('adapters', { type: 'string', array: true, demandOption: true, describe: 'PEFT folders or GGUF LoRA files, each FILE[:SCALE]' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output .gguf' })
      .option('outtype', { choices: ['f32', 'f16', 'bf16'] as const, describe: 'type of the merged matrices (default: the base\'s float type; f16 for a quantized base)' })
      .option('scale', { type: 'number', describe: 'multiplies every adapter\'s scale (default 1)' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing output file' }),
  run: async (args: Record<string, unknown>) => {
    const { loraMergeMain } = await import('@qtk/lora');
    await loraMergeMain({
      base: String(args.base),
      adapters: (args.adapters as unknown[]).map(String),
      output: String(args.output),
      outtype: args.outtype as string | undefined,
      scale: args.scale as number | undefined,
      force: Boolean(args.force),
    });
  },
};
