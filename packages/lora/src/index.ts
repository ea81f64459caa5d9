// @qtk/lora: dataset builder, trainer, adapter formats, merge.
export * from './dataset/index.js';
export * from './train/index.js';
export * from './adapter/index.js';
export * from './export/index.js';
