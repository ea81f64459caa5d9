// @qtk/adapt: `qtk adapt`, the whole chain (convert → dataset → train → merge → calibrate → quantize →
// eval/report → serve) as one resumable command whose stages are the other packages' library calls.
export { adaptMain, type AdaptArgs, type AdaptResult } from './main.js';
export { planAdapt, formatAdaptPlan, type AdaptPlan, type TrainChoice, type FinalChoice, type StagePlan } from './plan.js';
export { describeBase, type BaseModel } from './describe.js';
export { parseAdaptOptions, readAdaptConfig, optionsAsFlags, ADAPT_DEFAULTS, METHODS, TRAIN_BASES, FINAL_PRESETS, type AdaptOptions, type AdaptFlags } from './options.js';
// the stages, the report and the server load the engine and llama.cpp: imported on demand by adaptMain
export type { PipelineResult } from './pipeline.js';
export { STAGES_FILE, type StageRecord } from './stages.js';
export type { AdaptReport } from './report.js';
