// The command table: one file per command, listed in the order `qtk --help` shows them.
// Only commands that work are listed here.
import type { QtkCommand } from '../command.js';
import { inspectCommand } from './inspect.js';

export const COMMANDS: readonly QtkCommand[] = [inspectCommand];
