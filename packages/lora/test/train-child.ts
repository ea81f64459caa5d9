// A training run on the quadratic model in its own process, so a test can SIGKILL it mid-run.
// Usage: node run-ts.mjs train-child.ts <runDir> <resume 0|1> <delayMs>
import { trainLoop } from '../src/train/trainer.js';
import { QuadraticModel, quadraticRows } from './quadratic-model.js';
import { QUADRATIC_RUN } from './train-config.js';

const [runDir, resume, delay] = process.argv.slice(2);
const model = new QuadraticModel({ ...QUADRATIC_RUN.model, delayMs: Number(delay) });
const rows = quadraticRows(QUADRATIC_RUN.rows, 24, 50, 3);
await trainLoop({
  model, train: rows.slice(0, -2), eval: rows.slice(-2), config: QUADRATIC_RUN.config, runDir: runDir!, resume: resume === '1',
  identity: { model: 'quadratic' },
  hooks: { onStep: (r) => process.stdout.write(`${JSON.stringify({ step: r.step, loss: r.loss })}\n`) },
});
