import type { Argv } from 'yargs';
import { UsageError, type QtkCommand } from '../command.js';

const DEVICES = ['auto', 'cpu', 'cuda', 'vulkan'] as const;
const SPLITS = ['train', 'eval'] as const;

/** Options shared by `eval ppl`, `eval kld` and `imatrix` (llama-perplexity's names where it has one). */
export const evalOptions = (y: Argv) =>
  y
    .option('data', { type: 'string', demandOption: true, describe: 'UTF-8 text file (tokenized by llama.cpp), or a `qtk dataset build` folder or .arrow split (its token ids used as they are)' })
    .option('split', { choices: SPLITS, describe: 'the split of a dataset folder to read (default: eval)' })
    .option('ctx', { type: 'number', default: 512, describe: 'window size in tokens (llama.cpp -c); each window starts from an empty state' })
    .option('batch', { type: 'number', default: 512, describe: 'tokens per compute graph' })
    .option('chunks', { type: 'number', describe: 'evaluate only the first N windows' })
    .option('device', { choices: DEVICES, default: 'auto' as const, describe: 'compute device' })
    .option('threads', { type: 'number', describe: 'CPU threads (default: all cores, at most 16)' })
    .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
    .option('lora', { type: 'string', array: true, describe: 'GGUF LoRA adapter applied at run time, FILE[:SCALE] (repeatable; kld: applied to <model>)' });

export function evalArgs(args: Record<string, unknown>) {
  const num = (k: string) => (args[k] === undefined ? undefined : Number(args[k]));
  for (const k of ['ctx', 'batch', 'chunks', 'threads']) {
    const v = num(k);
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) throw new UsageError(`--${k} ${String(args[k])} is not a positive whole number. Pass e.g. --${k} 512.`);
  }
  return {
    data: String(args.data),
    split: args.split as (typeof SPLITS)[number] | undefined,
    ctx: num('ctx'),
    batch: num('batch'),
    chunks: num('chunks'),
    threads: num('threads'),
    device: args.device as (typeof DEVICES)[number],
    json: Boolean(args.json),
  };
}

export const evalCommand: QtkCommand = {
  command: 'eval <metric>',
  describe: 'Measure a GGUF: perplexity (`qtk eval ppl model.gguf --data text.txt` or `--data datasets/<name>`) or KL divergence against a base model (`qtk eval kld base.gguf other.gguf --data text.txt`)',
  builder: (y) =>
    y
      .command('ppl <model>', 'Perplexity by llama-perplexity\'s conventions (windows of --ctx, second half scored), with its ± error', (yy) => evalOptions(yy.positional('model', { type: 'string', demandOption: true, describe: 'the .gguf model' })), async (args) => {
        const { evalPplMain, parseLoraSpec } = await import('@qtk/engine');
        await evalPplMain({ model: String(args.model), ...evalArgs(args), lora: ((args.lora as string[] | undefined) ?? []).map(parseLoraSpec) });
      })
      .command('kld <base> <model>', 'KL divergence of <model> from <base> (mean, 99th percentile, same-top-token rate, Δ perplexity), as llama-perplexity --kl-divergence', (yy) =>
        evalOptions(yy.positional('base', { type: 'string', demandOption: true, describe: 'the reference .gguf (e.g. f16)' }).positional('model', { type: 'string', demandOption: true, describe: 'the .gguf to judge (e.g. Q4_K_M)' })), async (args) => {
        const { evalKldMain, parseLoraSpec } = await import('@qtk/engine');
        await evalKldMain({ base: String(args.base), model: String(args.model), ...evalArgs(args), lora: ((args.lora as string[] | undefined) ?? []).map(parseLoraSpec) });
      })
      .demandCommand(1, 'Name a metric: `qtk eval ppl <model>` or `qtk eval kld <base> <model>`.'),
  run: async (args) => {
    throw new UsageError(`unknown metric "${String(args.metric)}". Use \`qtk eval ppl <model>\` or \`qtk eval kld <base> <model>\`.`);
  },
};
