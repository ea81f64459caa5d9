// One quadratic-model run shared by the in-process tests and the child process.
import type { TrainLoopConfig } from '../src/train/trainer.js';

export const QUADRATIC_RUN = {
  model: { modules: 3, dIn: 6, dOut: 5, rank: 2, scale: 2, seed: 11 },
  rows: 14,
  config: {
    batch: 2, gradAccum: 2, lr: 0.05, warmup: 0.1, schedule: 'cosine', weightDecay: 0.01, maxGradNorm: 1,
    steps: 12, evalEvery: 4, saveEvery: 3, seed: 5, keepCheckpoints: 2,
  } satisfies TrainLoopConfig as TrainLoopConfig,
} as const;
