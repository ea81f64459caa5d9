// @qtk/convert: Hugging Face checkpoint → GGUF, streaming with bounded memory.
export { planConversion, ggufFileSize, type ConvertOptions, type ConversionPlan } from './plan.js';
export { convertCheckpoint, writePlan, type ConvertResult, type RunOptions } from './convert.js';
export { convertMain, type ConvertMainArgs } from './main.js';
export { formatPlan } from './dry-run.js';
export { planTensors, type PlannedTensor, type TensorPlan } from './tensors.js';
export { tensorChunks, CHUNK_F32_BYTES } from './tensor-data.js';
export { quantizeQ8_0 } from './q8_0.js';
export { modelNaming, defaultOutputName, sizeLabelFromCount } from './metadata.js';
