// The process boundary between the extension host and the engine. Owns: the typed messages
// (messages.ts), the host-side client that forks and restarts the engine (client.ts), and the engine
// process's request loop (server.ts; its program is main.ts). Imports core types only; never the
// engine at run time (the host must not load onnxruntime), never vscode.

export { EngineClient, type EngineClientOptions, type EngineState } from './client';
export {
  EngineExitedError,
  deserializeError,
  isEngineRequest,
  isEngineResponse,
  serializeError,
  type EngineRequest,
  type EngineResponse,
  type EngineStatusSnapshot,
  type LoadParams,
  type SerializedError,
  type WireGenerateOptions,
} from './messages';
export { processChannel, serveEngine, type EngineModule, type EngineServer, type LlavaModel as ServedModel, type ServerChannel } from './server';
