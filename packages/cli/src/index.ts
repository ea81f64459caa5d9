export { COMMANDS } from './commands/index.js';
export type { QtkCommand } from './command.js';
