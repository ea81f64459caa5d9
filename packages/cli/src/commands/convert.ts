import { enumArg, stringArg } from '@qtk/core';
import type { QtkCommand } from '../command.js';

const OUTTYPES = ['f32', 'f16', 'bf16', 'q8_0', 'auto'] as const;

export const convertCommand: QtkCommand = {
  command: 'convert <hf-dir>',
  describe: 'Convert a Hugging Face checkpoint (Qwen3.5/3.6, Qwen3, Qwen2, Llama) to GGUF',
  builder: (y) =>
    y
      .positional('hf-dir', { type: 'string', describe: 'checkpoint folder (config.json, tokenizer.json, *.safetensors)', demandOption: true })
      .option('output', { alias: 'o', type: 'string', describe: 'output .gguf (default: <hf-dir>/<Name>-<Size>-<OUTTYPE>.gguf)' })
      .option('outtype', { type: 'string', default: 'f16', describe: `tensor type of the weights: ${OUTTYPES.join(', ')} (norms and small tensors stay f32)` })
      .option('mtp', { type: 'boolean', default: true, describe: 'keep the multi-token-prediction block (--no-mtp drops it)' })
      .option('dry-run', { type: 'boolean', default: false, describe: 'print the tensor plan and the output size, write nothing' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing output file' }),
  run: async (args) => {
    const outtype = enumArg('outtype', args.outtype, OUTTYPES);
    const { convertMain } = await import('@qtk/convert');
    await convertMain({
      input: String(args['hf-dir']),
      output: stringArg('output', args.output),
      outtype,
      noMtp: args.mtp === false,
      dryRun: Boolean(args['dry-run']),
      force: Boolean(args.force),
    });
  },
};
