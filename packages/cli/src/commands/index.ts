// The command table: one file per command, listed in the order `qtk --help` shows them.
// Only commands that work are listed here.
import type { QtkCommand } from '../command.js';
import { adaptCommand } from './adapt.js';
import { convertCommand } from './convert.js';
import { datasetCommand } from './dataset.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { imatrixCommand } from './imatrix.js';
import { inspectCommand } from './inspect.js';
import { loraCommand } from './lora.js';
import { planCommand } from './plan.js';
import { quantizeCommand } from './quantize.js';
import { serveCommand } from './serve.js';

export const COMMANDS: readonly QtkCommand[] = [adaptCommand, convertCommand, datasetCommand, evalCommand, exportCommand, imatrixCommand, inspectCommand, loraCommand, planCommand, quantizeCommand, serveCommand];
