// @qtk/lora: the dataset builder (a repository to tokenized, packed Arrow splits).
export * from './dataset/index.js';
export * from './train/index.js';
export * from './adapter/index.js';
export * from './export/index.js';
