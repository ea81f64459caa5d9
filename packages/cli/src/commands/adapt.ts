// `qtk adapt <hf-dir | gguf> <repo> --vram SIZE`: flags only; the work is @qtk/adapt's adaptMain.
import type { QtkCommand } from '../command.js';

const STAGE_FLAGS = {
  'headroom': 'GPU memory kept free (driver, CUDA context) (default 1GiB)',
  'train-base': 'auto | float | Q8_0 | Q6_K | Q4_K_M | IQ4_XS: LoRA on the float file (F16) or QLoRA on a quantized copy (default auto: the most precise that fits)',
  'rank': 'LoRA rank (default 16)',
  'alpha': 'LoRA alpha (default 2 × rank)',
  'seq-len': 'tokens per training row (default 2048)',
  'steps': 'optimizer steps (instead of --epochs)',
  'epochs': 'passes over the training split (default 1)',
  'lr': 'peak learning rate (default 2e-4)',
  'batch': 'rows per micro-batch (default 1)',
  'grad-accum': 'micro-batches per optimizer step (default 8)',
  'warmup': 'warmup as a fraction of the steps (default 0.03)',
  'eval-every': 'trainer eval every N steps, 0 = before and after only (default 50)',
  'save-every': 'checkpoint every N steps, 0 = at the end only (default 50)',
  'eval-rows': 'trainer eval on the first N eval rows (default all)',
  'seed': 'seed of the split, data order and LoRA init (default 0)',
  'eval-fraction': 'share of the repository\'s files held out for eval (default 0.05)',
  'method': 'rtn | imatrix | gptq: rounding of the final quantization (default imatrix)',
  'type': 'final preset (Q8_0, Q6_K, Q5_K_M, Q4_K_M, IQ4_XS, Q3_K_M, Q2_K, …) (default: the largest that fits)',
  'fit': 'auto | SIZE: choose each tensor\'s type to fit the budget (auto: --vram less headroom) with the context',
  'calib-tokens': 'imatrix/GPTQ calibration tokens (default 32768)',
  'eval-ctx': 'window of the held-out perplexity and KLD (default min(512, seq-len))',
  'eval-chunks': 'at most this many held-out windows (default 64)',
  'threads': 'CPU threads',
} as const;

const camel = (k: string) => k.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export const adaptCommand: QtkCommand = {
  command: 'adapt [model] [repo]',
  describe: 'The whole chain in one resumable command: convert → dataset → LoRA/QLoRA train → merge → calibrate → quantize to fit → eval report → serve',
  builder: (y) => {
    let b = y
      .positional('model', { type: 'string', describe: 'a Hugging Face model folder or a .gguf (a config.json alone: --plan only)' })
      .positional('repo', { type: 'string', describe: 'the repository to adapt the model to (a share of its files is held out for eval)' })
      .option('vram', { type: 'string', describe: 'GPU memory to fit training and serving into, e.g. 24GiB (on a CPU: the RAM to use)' })
      .option('ctx', { type: 'string', describe: 'serving context the final file must fit (default 32768)' })
      .option('o', { alias: 'out', type: 'string', describe: 'run folder (default runs/<repo name>): stages.json, one folder per stage, report.md/json, loss.png' })
      .option('config', { type: 'string', describe: 'options from a JSON (a report.json or adapt.json of a run); flags given win' })
      .option('plan', { type: 'boolean', default: false, describe: 'print the plan (stages, memory, training precision, final size) and stop' })
      .option('json', { type: 'boolean', default: false, describe: 'with --plan: the plan as JSON' })
      .option('baseline', { type: 'boolean', describe: 'also quantize the base model with the final file\'s types and compare on the held-out files' })
      .option('serve', { type: 'boolean', default: false, describe: 'serve the final model (OpenAI-compatible) and print a client snippet' })
      .option('port', { type: 'string', describe: 'with --serve: TCP port (default 8080)' })
      .option('include', { type: 'string', array: true, describe: 'dataset: only files matching these globs' })
      .option('exclude', { type: 'string', array: true, describe: 'dataset: leave out files matching these globs' });
    for (const [k, d] of Object.entries(STAGE_FLAGS)) b = b.option(k, { type: 'string', describe: d });
    return b;
  },
  run: async (args) => {
    const { portArg, stringArg } = await import('@qtk/core');
    const { adaptMain } = await import('@qtk/adapt');
    const flags: Record<string, unknown> = { vram: args.vram, ctx: args.ctx, include: args.include, exclude: args.exclude, baseline: args.baseline };
    for (const k of Object.keys(STAGE_FLAGS)) flags[camel(k)] = args[k];
    await adaptMain({
      model: stringArg('<model>', args.model),
      repo: stringArg('<repo>', args.repo),
      out: stringArg('out', args.out),
      config: stringArg('config', args.config),
      plan: Boolean(args.plan),
      json: Boolean(args.json),
      serve: Boolean(args.serve),
      port: portArg('--port', args.port, { allowZero: true }),
      flags,
    });
  },
};
