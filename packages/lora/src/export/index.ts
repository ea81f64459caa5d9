// `qtk export hf`: GGUF (+ adapters) → Hugging Face checkpoint.
export * from './inverse.js';
export * from './hf.js';
export * from './main.js';
export * from './gptq.js';
