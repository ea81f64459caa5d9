// Adapter formats and tools: PEFT ⇄ GGUF LoRA, merge into a base GGUF.
export * from './types.js';
export * from './peft-config.js';
export * from './peft.js';
export * from './merge-only.js';
export * from './base.js';
export * from './convert.js';
export * from './load.js';
export * from './merge.js';
export * from './main.js';
