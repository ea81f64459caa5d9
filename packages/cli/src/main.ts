#!/usr/bin/env node
// qtk: parse the command line, then hand over to the package that owns the command.
import './threadpool.js'; // first: before anything touches libuv's pool
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { COMMANDS } from './commands/index.js';
import { reportFatal } from './report.js';

export async function main(argv: string[]): Promise<void> {
  let cli = yargs(argv)
    .scriptName('qtk')
    .usage('$0 <command> [options]\n\nQwen3.5/3.6 from a Hugging Face checkpoint to a GGUF adapted to your code, served from one GPU.')
    .strict()
    .demandCommand(1, 'Name a command; `qtk --help` lists them.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err, y) => {
      if (err) throw err;
      console.error(`${y.help() && ''}qtk: ${msg}\nRun \`qtk --help\` for usage.`);
      process.exit(2);
    });
  for (const c of COMMANDS) {
    cli = cli.command(c.command, c.describe, c.builder, async (args) => {
      await c.run(args as Record<string, unknown>);
    });
  }
  await cli.parseAsync();
}

main(hideBin(process.argv)).catch(reportFatal);
