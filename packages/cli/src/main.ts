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
    .strictCommands()
    .demandCommand(1, 'Name a command; `qtk --help` lists them.')
    .recommendCommands()
    .help()
    .alias('h', 'help')
    .version(false)
    .wrap(Math.min(110, process.stdout.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      // One line, like every other error: yargs' own messages may span several.
      console.error(`qtk: ${msg.replace(/\s*\n\s*/g, ' ').trim()} (\`qtk --help\` lists the options)`);
      process.exit(2);
    });
  for (const c of COMMANDS) {
    cli = cli.command(c.command, c.describe, c.builder, async (args) => {
      await c.run(args as Record<string, unknown>);
    });
  }
  await cli.parseAsync();
}

// A command whose promise never settles while the event loop runs dry scheduled work that will
// never finish (e.g. a worker pool of NaN threads): that is a failure, never a silent exit 0.
let settled = false;
process.on('beforeExit', () => {
  if (settled) return;
  console.error('qtk: the command stopped before finishing its work (nothing left to wait for), so it failed; no output was completed. Please report it with the command you ran.');
  process.exit(1);
});
main(hideBin(process.argv)).then(() => { settled = true; }, reportFatal);
