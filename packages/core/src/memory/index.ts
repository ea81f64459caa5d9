// Memory model: what a model needs to be stored and served, from its config or GGUF header alone.
export * from './model.js';
export * from './serving.js';
