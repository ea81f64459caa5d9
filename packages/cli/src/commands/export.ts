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
      .demandCommand(1, 'Name a format: `qtk export hf <gguf>`.'),
  run: async (args) => {
    throw new UsageError(`unknown export format "${String(args.format)}". Use \`qtk export hf <gguf>\`.`);
  },
};
