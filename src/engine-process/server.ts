// The engine process's request loop (its main is main.ts, bundled to dist/engine.js). It holds at most one loaded model,
// loads it lazily (the first `generate` names the model it needs), runs one request at a time and
// streams deltas back over the IPC channel. Why a separate process: onnxruntime's session creation
// and runs are synchronous native calls that block for seconds, and a native abort kills its whole
// process; here that costs a restart, not the extension host.
//
// The engine module comes in through a factory so the IPC layer can be tested with a test double.

import type { ChatTurn, GenerateOptions, GenerationEvent, ImageGeometry, ImageInput, LoadedModelInfo } from '../core';
import {
  isEngineRequest,
  serializeError,
  type EngineRequest,
  type EngineResponse,
  type LoadParams,
  type WireGenerateOptions,
} from './messages';

/** The part of index.ts's LlavaModel the server uses (structural, so a test double fits). */
export interface LlavaModel {
  readonly info: LoadedModelInfo;
  generate(turns: ChatTurn[], opts?: GenerateOptions): AsyncIterable<GenerationEvent>;
  /** optional so that test doubles without preprocessing still fit */
  preprocess?(image: ImageInput): Promise<{ geometry: ImageGeometry }>;
  dispose(): Promise<void>;
}

/** The part of the engine's door (src/engine/index.ts) the server uses. */
export interface EngineModule {
  loadModel(
    dir: string,
    opts: {
      provider: LoadParams['provider'];
      threads?: number;
      variant?: LoadParams['variant'];
      prefixCacheBytes?: number;
      signal?: AbortSignal;
      log?: (line: string) => void;
    },
  ): Promise<LlavaModel>;
}

/** A message pipe: `process` in the real engine, anything with the same shape in tests. */
export interface ServerChannel {
  send(msg: EngineResponse): void;
  onMessage(listener: (msg: unknown) => void): void;
  /** the parent went away: stop (a forked child whose parent died must not linger holding GBs) */
  onDisconnect(listener: () => void): void;
}

export function processChannel(): ServerChannel {
  if (!process.send) throw new Error('the engine server must be started with child_process.fork (no IPC channel)');
  return {
    send: (msg) => {
      // send() throws once the channel is closed (parent gone); nothing useful can be done then
      if (process.connected) process.send!(msg);
    },
    onMessage: (l) => process.on('message', l),
    onDisconnect: (l) => process.on('disconnect', l),
  };
}

export interface EngineServer {
  /** resolves when every queued request has finished (tests) */
  idle(): Promise<void>;
  dispose(): Promise<void>;
}

export function serveEngine(channel: ServerChannel, getEngine: () => Promise<EngineModule>): EngineServer {
  let model: LlavaModel | undefined;
  let modelKey = '';
  // One request at a time: a model's sessions and KV cache are not re-entrant.
  let queue: Promise<void> = Promise.resolve();
  let busy = false;
  const inFlight = new Map<number, AbortController>();
  const log = (line: string) => channel.send({ type: 'log', line });

  const keyOf = (p: LoadParams) => `${p.modelDir}\0${p.provider}\0${p.threads}\0${JSON.stringify(p.variant ?? '')}\0${p.prefixCacheMB ?? ''}`;

  async function ensureModel(p: LoadParams, signal: AbortSignal): Promise<LlavaModel> {
    if (model && modelKey === keyOf(p)) return model;
    if (model) {
      log(`unloading ${model.info.dir} to load ${p.modelDir}`);
      await model.dispose();
      model = undefined;
      modelKey = '';
    }
    const engine = await getEngine();
    const t0 = performance.now();
    log(`loading ${p.modelDir} (provider ${p.provider}, threads ${p.threads || 'auto'})`);
    const loaded = await engine.loadModel(p.modelDir, {
      provider: p.provider,
      threads: p.threads || undefined,
      variant: p.variant,
      prefixCacheBytes: p.prefixCacheMB === undefined ? undefined : p.prefixCacheMB * 1024 * 1024,
      signal,
      log,
    });
    model = loaded;
    modelKey = keyOf(p);
    const info: LoadedModelInfo = loaded.info;
    log(
      `loaded ${info.modelType} on ${info.provider}${info.fallbackReason ? ` (fallback: ${info.fallbackReason})` : ''} ` +
        `in ${Math.round(performance.now() - t0)} ms`,
    );
    channel.send({ type: 'modelLoaded', info });
    return loaded;
  }

  async function runGenerate(
    requestId: number,
    p: LoadParams,
    turns: ChatTurn[],
    options: WireGenerateOptions,
    signal: AbortSignal,
  ): Promise<void> {
    const m = await ensureModel(p, signal);
    let done: Extract<GenerationEvent, { type: 'done' }> | undefined;
    for await (const ev of m.generate(turns, { ...options, signal })) {
      if (ev.type === 'delta') channel.send({ type: 'delta', requestId, text: ev.text });
      else done = ev;
    }
    if (!done) throw new Error('the engine ended a generation without a done event');
    const s = done.stats;
    log(
      `generated ${s.newTokens} tokens (${s.stopReason}); prompt ${s.promptTokens} tokens; ` +
        `first token ${Math.round(s.timeToFirstTokenMs)} ms; ${s.decodeTokensPerSecond.toFixed(1)} tokens/s`,
    );
    channel.send({ type: 'done', requestId, text: done.text, stats: done.stats, ...(done.images ? { images: done.images } : {}) });
  }

  async function handle(req: EngineRequest, signal: AbortSignal): Promise<void> {
    switch (req.type) {
      case 'load': {
        const m = await ensureModel(req, signal);
        channel.send({ type: 'loaded', requestId: req.requestId, info: m.info });
        return;
      }
      case 'generate':
        return runGenerate(req.requestId, req.model, req.turns, req.options, signal);
      case 'geometry': {
        const m = await ensureModel(req.model, signal);
        if (!m.preprocess) throw new Error('this engine cannot preprocess images on their own');
        const { geometry } = await m.preprocess(req.image);
        channel.send({ type: 'geometry', requestId: req.requestId, geometry });
        return;
      }
      case 'unload':
        if (model) {
          log(`unloading ${model.info.dir}`);
          await model.dispose();
        }
        model = undefined;
        modelKey = '';
        channel.send({ type: 'unloaded', requestId: req.requestId });
        return;
      default:
        return;
    }
  }

  function enqueue(req: EngineRequest): void {
    const ac = new AbortController();
    inFlight.set(req.requestId, ac);
    queue = queue.then(async () => {
      busy = true;
      try {
        if (ac.signal.aborted) throw Object.assign(new Error('Cancelled'), { name: 'AbortError' });
        await handle(req, ac.signal);
      } catch (err) {
        channel.send({ type: 'error', requestId: req.requestId, error: serializeError(err) });
      } finally {
        busy = false;
        inFlight.delete(req.requestId);
      }
    });
  }

  channel.onMessage((msg) => {
    if (!isEngineRequest(msg)) {
      log(`ignored a malformed request: ${JSON.stringify(msg)?.slice(0, 200)}`);
      return;
    }
    switch (msg.type) {
      case 'cancel':
        // answered through the cancelled request itself (done with stopReason 'aborted', or error ABORTED)
        inFlight.get(msg.requestId)?.abort();
        return;
      case 'status':
        // answered at once, even while a generation is queued: it reads plain state only
        channel.send({
          type: 'status',
          requestId: msg.requestId,
          status: { pid: process.pid, loaded: model?.info, busy, rssBytes: process.memoryUsage().rss },
        });
        return;
      default:
        enqueue(msg);
    }
  });

  const server: EngineServer = {
    idle: () => queue,
    async dispose() {
      for (const ac of inFlight.values()) ac.abort();
      await queue;
      await model?.dispose();
      model = undefined;
    },
  };

  channel.onDisconnect(() => {
    void server.dispose().finally(() => process.exit(0));
  });

  channel.send({ type: 'ready', pid: process.pid });
  return server;
}
