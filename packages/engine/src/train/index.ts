export * from './lora.js';
export * from './row.js';
export * from './ops.js';
export * from './gdn-chunked.js';
export * from './layers.js';
export * from './train-model.js';
