// @qtk/core: formats and facts. Each module below owns one format; nothing here computes models.
export * from './errors.js';
export * from './progress.js';
export * from './atomic-file.js';
