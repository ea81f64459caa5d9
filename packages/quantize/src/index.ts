// @qtk/quantize: ggml block codecs (bit-exact with ggml), llama-quantize presets and per-tensor rules,
// importance matrices, and `qtk quantize` over GGUF files.
export { CODECS, getCodec, type Codec } from './codecs/index.js';
export { KVALUES_IQ4NL } from './codecs/iq4.js';
export { loadGgmlQuantizer, type GgmlQuantizer } from './native/ggml-quantize.js';
export { llamaModelQuantize, type LlamaQuantizeOptions } from './native/llama-quantize.js';
export { createRowQuantizer, type EngineName, type RowQuantizer } from './engine.js';
export { PRESETS, BITS_TO_PRESET, QUANTIZATION_VERSION, presetByName, type PresetName } from './presets.js';
export {
  allowsQuantization, chooseTensorTypes, fallbackType, llamaTensorOrder, requiresImatrix, tensorCategory, useMoreBits,
  type RuleOptions, type TensorCategory, type TensorChoice, type TypeOverride,
} from './rules.js';
export { readImatrix, imatrixFor, type Imatrix } from './imatrix.js';
export {
  quantizeGguf, quantizeMain, formatQuantizeReport, defaultOutputPath, parseTensorTypes, resolvePreset,
  type QuantizeOptions, type QuantizeResult, type QuantizedTensor, type QuantizeMainArgs, type SlabRounder, type TensorRounding,
} from './quantize-gguf.js';
export { blockGrid, GPTQ_TYPES, type BlockGrid } from './gptq/grids.js';
export { prepareHessian, type PreparedHessian, type PrepareOptions } from './gptq/hessian.js';
export { gptqQuantizeRows, type SolveOptions, type SolveResult } from './gptq/solver.js';
export { prepareHessianBlocked, type BlockedOptions } from './gptq/hessian-blocked.js';
export { batchColumns, gptqIntSlabs, gptqQuantizeSlabs, type SlabOptions } from './gptq/solve-slabs.js';
export { gptqWalk, trailingUpdateJs, type RoundColumn, type TrailingUpdate, type WalkOptions } from './gptq/walk.js';
export { GgmlTrailingUpdate, type GgmlUpdateOptions } from './gptq/walk-ggml.js';
export type { CalibrationOptions } from './gptq/calibrate.js';
export { quantizeGptq, gptqRounding, type GptqOptions, type HessianSource } from './gptq/quantize-gptq.js';
export { PLAN_PRESETS, presetSize, presetSizes, type PresetSize } from './plan/sizes.js';
export { loadModelDescription } from './plan/source.js';
export { planModel, type Plan, type PlanOptions, type PlanRow } from './plan/plan.js';
export { planTraining, TRAIN_BASES, type TrainingPlan, type TrainingRow } from './plan/training.js';
export { planMain, formatPlan, type PlanMainArgs } from './plan/plan-main.js';
export { fitGguf, fitMain, formatFitReport, defaultFitOutput, type FitOptions, type FitResult, type FitChoice } from './fit/fit-gguf.js';
export { allocate, minimumBytes, type AllocItem, type Allocation } from './fit/allocate.js';
export { gptqIntRows, groupScaleZero, type IntSolveOptions, type IntSolveResult } from './gptq/int-solver.js';
export { GPTQ_FORMAT, concatGptq, gptqBytes, gptqFits, packGptq, splitGptq, unpackGptq, type GptqTensors } from './gptq/gptq-format.js';
export { GptqCheckpoint } from './gptq/checkpoint.js';
export { SequentialCalibration, type LayerHessian } from './gptq/sequential.js';
