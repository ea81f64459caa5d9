// @qtk/serve: an OpenAI-compatible HTTP server over node-llama-cpp (llama-server's API).
export { startServer, type ServerHandle } from './server.js';
export { serveMain, type ServeMainArgs } from './main.js';
export { parseLoraArg, type LoraSpec, type ServeOptions } from './options.js';
export { ApiError } from './errors.js';
export { ChatOutputParser, parseToolCalls, type ParsedToolCall } from './chat-output.js';
export { partialStopLength } from './generate.js';
