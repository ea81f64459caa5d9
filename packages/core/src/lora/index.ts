export * from './module-map.js';
