// Safetensors: format facts, a validating streaming reader (file and sharded checkpoint), a streaming writer.
export * from './format.js';
export { checkHeaderLength, parseHeader, type ParsedHeader } from './header.js';
export { SafetensorsFile } from './file.js';
export { SafetensorsCheckpoint } from './checkpoint.js';
export { SafetensorsWriter, buildSafetensorsHeader, type SafetensorsWriterTensor } from './writer.js';
