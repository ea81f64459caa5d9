// Learning-rate schedules: linear warmup from 0, then cosine or linear decay to 0, or constant; the
// same curves as transformers' get_{cosine,linear,constant}_schedule_with_warmup, indexed by the
// 0-based optimizer step.

export const SCHEDULES = ['cosine', 'linear', 'constant'] as const;
export type ScheduleKind = (typeof SCHEDULES)[number];

export interface Schedule {
  kind: ScheduleKind;
  peak: number;
  warmupSteps: number;
  totalSteps: number;
}

/** Warmup steps from a fraction of the run (transformers' warmup_ratio rounds up). */
export function warmupSteps(fraction: number, totalSteps: number): number {
  return Math.ceil(fraction * totalSteps);
}

export function learningRate(s: Schedule, step: number): number {
  if (step < s.warmupSteps) return (s.peak * step) / Math.max(1, s.warmupSteps);
  if (s.kind === 'constant') return s.peak;
  const progress = (step - s.warmupSteps) / Math.max(1, s.totalSteps - s.warmupSteps);
  if (s.kind === 'linear') return s.peak * Math.max(0, 1 - progress);
  return s.peak * Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
}
