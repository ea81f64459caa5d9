// `qtk lora train <repo | dataset-dir> --model <gguf>`: flags only; the work is @qtk/lora's loraTrainMain.
import type { Argv } from 'yargs';

const trainBuilder = (y: Argv) =>
  y
    .positional('input', { type: 'string', describe: 'a repository folder (its dataset is built with the model\'s tokenizer and cached) or a `qtk dataset build` folder' })
    .option('model', { type: 'string', describe: 'the base model GGUF (qwen35 or qwen3; f16/bf16 for LoRA, k-quants for QLoRA)' })
    .option('o', { alias: 'out', type: 'string', describe: 'run folder (default runs/<input name>): adapter/, adapter.gguf, metrics.csv, loss.png/svg, train.json, checkpoints/' })
    .option('rank', { type: 'string', describe: 'LoRA rank r (default 16)' })
    .option('alpha', { type: 'string', describe: 'LoRA alpha; scale alpha/r (default 32)' })
    .option('rslora', { type: 'boolean', describe: 'rank-stabilised scale alpha/√r' })
    .option('dropout', { type: 'string', describe: 'LoRA dropout on the adapter input (default 0)' })
    .option('targets', { type: 'string', array: true, describe: 'all | attn,gdn,mlp | module names (q_proj, in_proj_qkv, …) (default all)' })
    .option('seq-len', { type: 'string', describe: 'tokens per row (default 2048; a dataset folder: its own)' })
    .option('batch', { type: 'string', describe: 'rows per micro-batch (default 1)' })
    .option('grad-accum', { type: 'string', describe: 'micro-batches per optimizer step (default 8)' })
    .option('lr', { type: 'string', describe: 'peak learning rate (default 2e-4)' })
    .option('warmup', { type: 'string', describe: 'warmup as a fraction of the steps (default 0.03)' })
    .option('schedule', { type: 'string', describe: 'cosine | linear | constant (default cosine)' })
    .option('weight-decay', { type: 'string', describe: 'AdamW decoupled weight decay (default 0)' })
    .option('max-grad-norm', { type: 'string', describe: 'global gradient-norm clip, 0 = off (default 1)' })
    .option('epochs', { type: 'string', describe: 'passes over the train split (default 1)' })
    .option('steps', { type: 'string', describe: 'optimizer steps (instead of --epochs)' })
    .option('eval-every', { type: 'string', describe: 'eval every N steps, 0 = only before and after (default 50)' })
    .option('eval-rows', { type: 'string', describe: 'eval on the first N rows of the eval split (default all)' })
    .option('save-every', { type: 'string', describe: 'checkpoint every N steps, 0 = only at the end (default 100)' })
    .option('seed', { type: 'string', describe: 'seed of data order, init and dropout (default 0)' })
    .option('threads', { type: 'string', describe: 'CPU threads' })
    .option('device', { type: 'string', describe: 'auto | cpu | cuda | vulkan (default auto)' })
    .option('resume', { type: 'string', describe: 'continue the run in this folder from its last checkpoint' })
    .option('plan', { type: 'boolean', default: false, describe: 'print the memory and tokens the run needs, then stop' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON line per step and eval on stdout' })
    .option('eval-fraction', { type: 'string', describe: 'repository input: share of files held out for eval (default 0.05)' })
    .option('fim-rate', { type: 'string', describe: 'repository input: share of files rendered as fill-in-the-middle (default 0)' })
    .option('include', { type: 'string', array: true, describe: 'repository input: only files matching these globs' })
    .option('exclude', { type: 'string', array: true, describe: 'repository input: leave out files matching these globs' });

async function runTrain(args: Record<string, unknown>): Promise<void> {
  const { loraTrainMain } = await import('@qtk/lora');
  const { numberArg, stringArg } = await import('@qtk/core');
  const strings = (v: unknown) => (v === undefined ? undefined : (v as unknown[]).map(String));
  const build = {
    evalFraction: numberArg('eval-fraction', args.evalFraction, { min: 0, max: 1 }),
    fimRate: numberArg('fim-rate', args.fimRate, { min: 0, max: 1 }),
    include: strings(args.include),
    exclude: strings(args.exclude),
  };
  await loraTrainMain({
    input: stringArg('<input>', args.input),
    model: stringArg('model', args.model),
    out: stringArg('out', args.out),
    resume: stringArg('resume', args.resume),
    plan: Boolean(args.plan),
    json: Boolean(args.json),
    build: Object.fromEntries(Object.entries(build).filter(([, v]) => v !== undefined)),
    flags: {
      rank: args.rank, alpha: args.alpha, rslora: args.rslora, dropout: args.dropout, targets: args.targets, seqLen: args.seqLen,
      batch: args.batch, gradAccum: args.gradAccum, lr: args.lr, warmup: args.warmup, schedule: args.schedule, weightDecay: args.weightDecay,
      maxGradNorm: args.maxGradNorm, epochs: args.epochs, steps: args.steps, evalEvery: args.evalEvery, evalRows: args.evalRows,
      saveEvery: args.saveEvery, seed: args.seed, threads: args.threads, device: args.device,
    },
  });
}

export const loraTrainCommand = {
  command: 'train [input]',
  describe: 'Train a LoRA adapter on a repository or dataset: AdamW, warmup + cosine, eval, checkpoints, --resume, loss plot; writes PEFT and GGUF adapters',
  builder: trainBuilder,
  run: runTrain,
};
