import type { Argv } from 'yargs';

export const loraConvertCommand = {
  command: 'convert <input>',
  describe: 'Convert a PEFT adapter to a GGUF LoRA for llama.cpp (`--to peft` converts back)',
  builder: (y: Argv) =>
    y
      .positional('input', { type: 'string', demandOption: true, describe: 'PEFT adapter folder (adapter_config.json + adapter_model.safetensors) or GGUF LoRA file' })
      .option('base', { type: 'string', demandOption: true, describe: 'the base model: Hugging Face folder or GGUF' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'output .gguf (or folder with --to peft)' })
      .option('to', { choices: ['gguf', 'peft'] as const, describe: 'output format (default: gguf for a folder, peft for a .gguf)' })
      .option('force', { type: 'boolean', default: false, describe: 'overwrite an existing output' }),
  run: async (args: Record<string, unknown>) => {
    const { loraConvertMain } = await import('@qtk/lora');
    await loraConvertMain({ input: String(args.input), base: String(args.base), output: String(args.output), to: args.to as string | undefined, force: Boolean(args.force) });
  },
};
