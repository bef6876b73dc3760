// Main of the forked engine process, bundled to dist/engine.js and started by EngineClient (which
// sets LLAVA_ENGINE_PROCESS=1). A program, not a module: nothing imports it. The engine itself is
// imported lazily, so the process answers `status` before onnxruntime has loaded.

import { processChannel, serveEngine } from './server';

if (process.env.LLAVA_ENGINE_PROCESS === '1' && typeof process.send === 'function') {
  process.on('uncaughtException', (err) => {
    // stderr reaches the host's log; exit so the host restarts a clean process
    console.error('engine: uncaught exception', err);
    process.exit(70);
  });
  serveEngine(processChannel(), () => import('../engine'));
}
