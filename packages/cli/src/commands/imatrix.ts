import type { QtkCommand } from '../command.js';
import { evalArgs, evalOptions } from './eval.js';

export const imatrixCommand: QtkCommand = {
  command: 'imatrix <model>',
  describe: 'Collect an importance matrix (Σ x² per input column of every matmul) in llama.cpp\'s imatrix GGUF format, for `qtk quantize --imatrix`',
  builder: (y) =>
    evalOptions(y.positional('model', { type: 'string', demandOption: true, describe: 'the .gguf model (usually f16/bf16)' }))
      .option('output', { alias: 'o', type: 'string', default: 'imatrix.gguf', describe: 'the imatrix file to write' })
      .option('process-output', { type: 'boolean', default: false, describe: 'also collect output.weight (llama-imatrix --process-output)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace an existing output file' }),
  run: async (args) => {
    const common = evalArgs(args);
    const { imatrixMain } = await import('@qtk/engine');
    await imatrixMain({ model: String(args.model), output: String(args.output), force: Boolean(args.force), processOutput: Boolean(args.processOutput), ...common });
  },
};
