export * from './pre-tokenizers.js';
export * from './vocab.js';
export * from './files.js';
