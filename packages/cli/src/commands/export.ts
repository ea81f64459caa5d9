import { UsageError, type QtkCommand } from '../command.js';

export const exportCommand: QtkCommand = {
  command: 'export <format>',
  describe: 'Export a GGUF (with LoRA adapters merged) to another format: `qtk export hf model.gguf --hf <original checkpoint> -o dir`',
  builder: (y) =>
    y
      .command('hf <gguf>', 'A Hugging Face checkpoint (safetensors shards + index, config, tokenizer) in the original names and layouts, for vLLM / SGLang / transformers', (yy) =>
        yy
          .positional('gguf', { type: 'string', demandOption: true, describe: 'the .gguf model (F32/F16/BF16; quantized tensors are dequantized)' })
          .option('hf', { type: 'string', demandOption: true, describe: 'the checkpoint the GGUF was converted from (config.json, tokenizer files, vision tower)' })
          .option('lora', { type: 'string', array: true, describe: 'adapter to merge first, FILE[:SCALE]: a GGUF LoRA or a PEFT folder (repeatable)' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output folder' })
          .option('dtype', { choices: ['f32', 'f16', 'bf16'] as const, describe: 'tensor dtype (default: each GGUF tensor\'s float type; bf16 for quantized ones)' })
          .option('force', { type: 'boolean', default: false, describe: 'replace an existing output folder' }), async (args) => {
        const { exportHfMain } = await import('@qtk/lora');
        await exportHfMain({
          gguf: String(args.gguf), hf: String(args.hf), output: String(args.output),
          lora: (args.lora as string[] | undefined) ?? [], dtype: args.dtype as string | undefined, force: Boolean(args.force),
        });
      })
      .command('gptq <input>', 'A GPTQ checkpoint (qweight/qzeros/scales/g_idx, quantization_config) in the original names, for vLLM (`vllm serve <dir> --tensor-parallel-size N`) and transformers', (yy) =>
        yy
          .positional('input', { type: 'string', demandOption: true, describe: 'a .gguf (F16/BF16/F32; then --hf) or a Hugging Face checkpoint folder' })
          .option('hf', { type: 'string', describe: 'with a GGUF input: the checkpoint it was converted from (config.json, tokenizer, names)' })
          .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output folder' })
          .option('calib', { type: 'string', demandOption: true, describe: 'calibration text file or qtk dataset folder' })
          .option('bits', { type: 'string', describe: 'bits per weight: 2, 4 or 8 (default 4)' })
          .option('group-size', { type: 'string', describe: 'input columns per scale/zero group: 32, 64, 128 or -1 for one per row (default 128)' })
          .option('desc-act', { type: 'boolean', default: false, describe: 'act-order: visit columns by decreasing Hessian diagonal (g_idx records the groups)' })
          .option('calib-tokens', { type: 'string', describe: 'calibration tokens (default 32768)' })
          .option('ctx', { type: 'string', describe: 'calibration window length (default 512)' })
          .option('damp', { type: 'string', describe: 'damping, fraction of mean diag(H) (default 0.01)' })
          .option('block', { type: 'string', describe: 'columns per lazy batch (default 128)' })
          .option('threads', { type: 'string', describe: 'CPU threads for calibration' })
          .option('force', { type: 'boolean', default: false, describe: 'replace an existing output folder' }), async (args) => {
        const { exportGptqMain } = await import('@qtk/lora');
        await exportGptqMain({
          input: String(args.input), hf: args.hf as string | undefined, output: String(args.output), calib: args.calib as string | undefined,
          bits: args.bits, groupSize: args['group-size'], descAct: Boolean(args['desc-act']), calibTokens: args['calib-tokens'],
          ctx: args.ctx, damp: args.damp, block: args.block, threads: args.threads, force: Boolean(args.force),
        });
      })
      .demandCommand(1, 'Name a format: `qtk export hf <gguf>` or `qtk export gptq <gguf | hf-dir>`.'),
  run: async (args) => {
    throw new UsageError(`unknown export format "${String(args.format)}". Use \`qtk export hf <gguf>\` or \`qtk export gptq <gguf | hf-dir>\`.`);
  },
};
