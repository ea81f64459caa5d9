import { KV_TYPES, enumArg, intArg, sizeArg } from '@qtk/core';
import type { QtkCommand } from '../command.js';

export const planCommand: QtkCommand = {
  command: 'plan <model>',
  describe: 'Which preset fits a GPU: file size and serving memory (weights, KV cache, recurrent state, compute) per preset, from the config or GGUF header alone',
  builder: (y) =>
    y
      .positional('model', { type: 'string', demandOption: true, describe: 'a Hugging Face model folder, its config.json, or a .gguf' })
      .option('vram', { type: 'string', demandOption: true, describe: 'GPU memory, e.g. 24GiB, 80GB' })
      .option('ctx', { type: 'string', default: '32768', describe: 'context length per sequence (tokens)' })
      .option('parallel', { type: 'string', default: '1', describe: 'sequences served at once' })
      .option('kv-type', { type: 'string', default: 'f16', describe: 'KV cache type: f16, q8_0, q4_0' })
      .option('headroom', { type: 'string', default: '1GiB', describe: 'GPU memory kept free (driver, CUDA context)' })
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
    };
    const { planMain } = await import('@qtk/quantize');
    await planMain(opts);
  },
};
