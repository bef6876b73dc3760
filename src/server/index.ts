// The OpenAI-compatible HTTP server behind `llava serve`: routes, request validation, image sources
// and their bounds, the request queue that batches rows through generateBatch, errors in OpenAI's
// shape. It owns no model: the caller (the CLI) loads one and hands it in. Imports core and the
// engine's types only; never vscode, never the hub or captioning.

export { startServer, type RunningServer, type ServeOptions } from './http';
export { ApiError } from './errors';
export type { BatchModel } from './scheduler';
