// `qtk lora <subcommand>`: each subcommand lives in its own lora-<name>.ts file, listed here.
import type { Argv } from 'yargs';
import { UsageError, type QtkCommand } from '../command.js';
import { loraConvertCommand } from './lora-convert.js';
import { loraMergeCommand } from './lora-merge.js';
import { loraTrainCommand } from './lora-train.js';

const SUBCOMMANDS = [loraTrainCommand, loraConvertCommand, loraMergeCommand] as const;

export const loraCommand: QtkCommand = {
  command: 'lora <subcommand>',
  describe: 'LoRA adapters: train one on a repository, convert PEFT ⇄ GGUF LoRA, merge into a base GGUF',
  builder: (y) => {
    let out: Argv = y;
    for (const c of SUBCOMMANDS) out = out.command(c.command, c.describe, c.builder, (args) => c.run(args as Record<string, unknown>));
    return out.demandCommand(1, `Name a subcommand: ${SUBCOMMANDS.map((c) => c.command.split(' ')[0]).join(', ')}.`);
  },
  run: async (args) => {
    throw new UsageError(`unknown lora subcommand "${String(args.subcommand)}". Use ${SUBCOMMANDS.map((c) => `\`qtk lora ${c.command.split(' ')[0]}\``).join(' or ')}.`);
  },
};
