import type { QtkCommand } from '../command.js';

export const inspectCommand: QtkCommand = {
  command: 'inspect <path>',
  describe: 'Show a GGUF file\'s metadata and tensors, or a safetensors checkpoint\'s tensors',
  builder: (y) =>
    y
      .positional('path', { type: 'string', describe: 'a .gguf file, a .safetensors file, or a Hugging Face checkpoint folder', demandOption: true })
      .option('json', { type: 'boolean', default: false, describe: 'print machine-readable JSON' })
      .option('all', { type: 'boolean', default: false, describe: 'print long arrays (tokens, merges) in full' }),
  run: async (args) => {
    const { inspectMain } = await import('@qtk/core');
    await inspectMain({ path: String(args.path), json: Boolean(args.json), all: Boolean(args.all) });
  },
};
