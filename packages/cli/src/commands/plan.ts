import { KV_TYPES, enumArg, intArg, sizeArg } from '@qtk/core';
import type { QtkCommand } from '../command.js';

export const planCommand: QtkCommand = {
  command: 'plan <model>',
  describe: 'Which preset fits a GPU: file size and serving memory (weights, KV cache, recurrent state, compute) per preset, with --train the LoRA/QLoRA training memory, from the config or GGUF header alone. Exits 1 (after the table) when no preset fits',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'a Hugging Face model folder, its config.json, or a .gguf' })
      .option('vram', { type: 'string', demandOption: true, describe: 'GPU memory, e.g. 24GiB, 80GB' })
      .option('ctx', { type: 'string', default: '32768', describe: 'context length per sequence (tokens)' })
      .option('parallel', { type: 'string', default: '1', describe: 'sequences served at once' })
      .option('kv-type', { type: 'string', default: 'f16', describe: 'KV cache type: f16, q8_0, q4_0' })
      .option('headroom', { type: 'string', default: '1GiB', describe: 'GPU memory kept free (driver, CUDA context)' })
      .option('train', { type: 'boolean', default: false, describe: 'also plan a LoRA training step: bf16 LoRA and Q8_0/Q5_K_M/Q4_K_M QLoRA' })
      .option('seq-len', { type: 'string', default: '2048', describe: 'with --train: tokens per training step' })
      .option('rank', { type: 'string', default: '16', describe: 'with --train: LoRA rank (every linear of the trunk)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the plan as JSON' }),
  run: async (args) => {
    const opts = {
      input: String(args.model),
      vram: sizeArg('vram', args.vram)!,
      ctx: intArg('ctx', args.ctx, { min: 1, max: 16_777_216 })!,
      parallel: intArg('parallel', args.parallel, { min: 1, max: 1024 })!,
      kvType: enumArg('kv-type', args['kv-type'], KV_TYPES)!,
      headroom: sizeArg('headroom', args.headroom, { min: 0 })!,
      json: Boolean(args.json),
      train: args.train
        ? { seqLen: intArg('seq-len', args['seq-len'], { min: 16, max: 1 << 20 })!, rank: intArg('rank', args.rank, { min: 1, max: 4096 })! }
        : undefined,
    };
    const { planMain } = await import('@qtk/quantize');
    const plan = await planMain(opts);
    // The table is still useful when nothing fits, but a script must not read that as a recommendation.
    if (!plan.recommended) process.exitCode = 1;
  },
};
