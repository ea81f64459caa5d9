import type { Argv } from 'yargs';
import { enumArg, intArg } from '@qtk/core';
import { UsageError, type QtkCommand } from '../command.js';

const DEVICES = ['auto', 'cpu', 'cuda', 'vulkan'] as const;
const SPLITS = ['train', 'eval'] as const;

/** Options shared by `eval ppl`, `eval kld` and `imatrix` (llama-perplexity's names where it has one). */
export const evalOptions = (y: Argv) =>
  y
    .option('data', { type: 'string', demandOption: true, describe: 'UTF-8 text file (tokenized by llama.cpp), or a `qtk dataset build` folder or .arrow split (its token ids used as they are)' })
    .option('split', { type: 'string', describe: `the split of a dataset folder to read: ${SPLITS.join(', ')} (default: eval)` })
    .option('ctx', { type: 'string', default: 512, describe: 'window size in tokens (llama.cpp -c); each window starts from an empty state' })
    .option('batch', { type: 'string', default: 512, describe: 'tokens per compute graph' })
    .option('chunks', { type: 'string', describe: 'evaluate only the first N windows' })
    .option('device', { type: 'string', default: 'auto', describe: `compute device: ${DEVICES.join(', ')}` })
    .option('threads', { type: 'string', describe: 'CPU threads (default: all cores, at most 16)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' });

export function evalArgs(args: Record<string, unknown>) {
  return {
    data: String(args.data),
    split: enumArg('split', args.split, SPLITS),
    ctx: intArg('ctx', args.ctx, { min: 4, example: 512 }),
    batch: intArg('batch', args.batch, { min: 1, example: 512 }),
    chunks: intArg('chunks', args.chunks, { min: 1 }),
    threads: intArg('threads', args.threads, { min: 1, max: 1024 }),
    device: enumArg('device', args.device, DEVICES),
    json: Boolean(args.json),
  };
}

export const evalCommand: QtkCommand = {
  command: 'eval',
  describe: 'Measure a GGUF: perplexity (`qtk eval ppl model.gguf --data text.txt` or `--data datasets/<name>`) or KL divergence against a base model (`qtk eval kld base.gguf other.gguf --data text.txt`)',
  builder: (y) =>
    y
      .command('ppl <model>', 'Perplexity by llama-perplexity\'s conventions (windows of --ctx, second half scored), with its ± error', (yy) => evalOptions(yy.positional('model', { type: 'string', demandOption: true, describe: 'the .gguf model' })), async (args) => {
        const common = evalArgs(args);
        const { evalPplMain } = await import('@qtk/engine');
        await evalPplMain({ model: String(args.model), ...common });
      })
      .command('kld <base> <model>', 'KL divergence of <model> from <base> (mean, 99th percentile, same-top-token rate, Δ perplexity), as llama-perplexity --kl-divergence', (yy) =>
        evalOptions(yy.positional('base', { type: 'string', demandOption: true, describe: 'the reference .gguf (e.g. f16)' }).positional('model', { type: 'string', demandOption: true, describe: 'the .gguf to judge (e.g. Q4_K_M)' })), async (args) => {
        const common = evalArgs(args);
        const { evalKldMain } = await import('@qtk/engine');
        await evalKldMain({ base: String(args.base), model: String(args.model), ...common });
      })
      .demandCommand(1, 'Name a metric: `qtk eval ppl <model>` or `qtk eval kld <base> <model>`.'),
  run: async () => {
    throw new UsageError(`name a metric: use \`qtk eval ppl <model>\` or \`qtk eval kld <base> <model>\`.`);
  },
};
