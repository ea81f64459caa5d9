// @qtk/core: formats and facts. Each module below owns one format; nothing here computes models.
export * from './errors.js';
export * from './progress.js';
export * from './atomic-file.js';
export * from './cli-args.js';
export * from './output-guard.js';
export * from './interrupt.js';
export * from './dtypes.js';
export * from './safetensors/index.js';
export * from './ggml-types.js';
export * from './gguf/index.js';
export * from './inspect.js';
export * from './arch/index.js';
export * from './tokenizer/index.js';
export * from './memory/index.js';
export * from './lora/index.js';
export * from './memory/training.js';
export * from './prng.js';
