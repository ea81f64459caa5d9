// @qtk/lora: the dataset builder (a repository to tokenized, packed Arrow splits).
export * from './dataset/index.js';
