// @qtk/engine: ggml through FFI (koffi) on node-llama-cpp's prebuilt libraries.
export * from './ggml/lib.js';
export * from './ggml/tensor.js';
export * from './ggml/context.js';
export * from './ggml/backend.js';
export * from './ggml/quantize.js';
export * from './model/hparams.js';
export * from './model/build.js';
export * from './model/attention.js';
export * from './model/weights.js';
export * from './model/qwen3.js';
export * from './model/qwen35.js';
export * from './model/model.js';
export * from './reference/index.js';
export * from './eval/tokenize.js';
export * from './eval/perplexity.js';
export * from './eval/kld.js';
export * from './eval/imatrix.js';
export * from './eval/data.js';
export * from './data/dataset.js';
export * from './data/arrow-tokens.js';
export { evalPplMain, evalKldMain, imatrixMain, perplexityOf, type EvalCommonArgs, type PplResult } from './eval/main.js';
<<<<<<< HEAD
export * from './train/index.js';
=======
export * from './model/lora.js';
>>>>>>> issue-12
