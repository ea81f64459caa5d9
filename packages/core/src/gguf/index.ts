// GGUF container: constants and limits, reader, writer.
export * from './constants.js';
export { GgufReader, alignUp, type GgufTensorInfo, type GgufReaderOptions } from './reader.js';
export { GgufWriter, type GgufWriterOptions } from './writer.js';
export * from './lora-adapter.js';
