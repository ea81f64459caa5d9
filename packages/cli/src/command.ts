// One CLI command: its yargs definition plus a lazy import of the package that does the work,
// so `qtk --help` never loads node-llama-cpp or ggml.
import type { Argv } from 'yargs';

export interface QtkCommand {
  /** yargs command string, e.g. 'inspect <path>' */
  command: string;
  describe: string;
  builder: (y: Argv) => Argv;
  /** Imports the owning package and runs the library call with the parsed arguments. */
  run: (args: Record<string, unknown>) => Promise<void>;
}

/** An error a user caused: printed as one message (no stack) with what to do next. */
export class UsageError extends Error {
  override name = 'UsageError';
}
