// Host side of the process boundary. Forks the engine (dist/engine.js) with VS Code's own Node
// (process.execPath + ELECTRON_RUN_AS_NODE), talks typed IPC (ipc.ts), and never blocks: every
// call is a message and a promise. A crash rejects whatever was in flight with EngineExitedError and
// the next request starts a fresh process; after `idleTimeoutMs` without requests the process is
// stopped so its gigabytes go back to the system. No `vscode` import: plain-Node tests drive it.

import { fork, type ChildProcess } from 'node:child_process';
import type { ChatTurn, GenerateOptions, GenerationEvent, ImageGeometry, ImageInput, LoadedModelInfo } from '../core';
import { AbortedError } from '../core';
import {
  deserializeError,
  EngineExitedError,
  isEngineResponse,
  type EngineRequest,
  type EngineResponse,
  type EngineStatusSnapshot,
  type LoadParams,
} from './messages';

export type EngineState = 'idle' | 'loading' | 'generating' | 'error' | 'stopped';

export interface EngineClientOptions {
  /** the engine's main module: dist/engine.js, or a test's fake */
  modulePath: string;
  execArgv?: string[];
  /** merged over process.env */
  env?: Record<string, string>;
  /** stop the process after this long without requests; 0 = never */
  idleTimeoutMs?: number;
  /** the Node that runs the engine (default: the host's own, VS Code's Node under Electron) */
  execPath?: string;
}

type Listener<T> = (value: T) => void;

/** A tiny event emitter: vscode.EventEmitter is unavailable here. */
class Emitter<T> {
  private listeners = new Set<Listener<T>>();
  readonly event = (l: Listener<T>): { dispose(): void } => {
    this.listeners.add(l);
    return { dispose: () => this.listeners.delete(l) };
  };
  fire(v: T): void {
    for (const l of [...this.listeners]) {
      try {
        l(v);
      } catch {
        // a listener's bug must not break the IPC loop
      }
    }
  }
  clear(): void {
    this.listeners.clear();
  }
}

/** An unbounded async queue: IPC events pushed in, one consumer pulls them out with for-await. */
class EventQueue<T> {
  private items: T[] = [];
  private waiting: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private failure: unknown;
  push(v: T): void {
    if (this.waiting) {
      this.waiting.resolve({ value: v, done: false });
      this.waiting = undefined;
    } else this.items.push(v);
  }
  end(err?: unknown): void {
    this.ended = true;
    this.failure = err;
    if (this.waiting) {
      if (err) this.waiting.reject(err);
      else this.waiting.resolve({ value: undefined, done: true });
      this.waiting = undefined;
    }
  }
  next(): Promise<IteratorResult<T>> {
    if (this.items.length) return Promise.resolve({ value: this.items.shift()!, done: false });
    if (this.ended) return this.failure ? Promise.reject(this.failure) : Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve, reject) => (this.waiting = { resolve, reject }));
  }
}

interface Pending {
  kind: 'load' | 'generate' | 'unload' | 'status' | 'geometry';
  /** a reply for this request arrived */
  onResponse(msg: EngineResponse): void;
  onError(err: Error): void;
}

const LAST_OUTPUT_CHARS = 800;

export class EngineClient {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | undefined;
  private lastOutput = '';
  private disposed = false;
  private _state: EngineState = 'stopped';
  private _modelInfo: LoadedModelInfo | undefined;
  private idleTimeoutMs: number;

  private readonly stateEmitter = new Emitter<EngineState>();
  private readonly logEmitter = new Emitter<string>();
  private readonly modelEmitter = new Emitter<LoadedModelInfo | undefined>();
  /** idle / loading / generating / error / stopped */
  readonly onDidChangeState = this.stateEmitter.event;
  /** lines from the engine (its log messages, stdout and stderr) */
  readonly onLog = this.logEmitter.event;
  /** a model was loaded (lazily or on request), or the process holding it went away */
  readonly onDidChangeModel = this.modelEmitter.event;

  constructor(private readonly options: EngineClientOptions) {
    this.idleTimeoutMs = options.idleTimeoutMs ?? 0;
  }

  get state(): EngineState {
    return this._state;
  }
  /** the model loaded in the running process, if any */
  get modelInfo(): LoadedModelInfo | undefined {
    return this._modelInfo;
  }
  get pid(): number | undefined {
    return this.child?.pid;
  }

  setIdleTimeout(ms: number): void {
    this.idleTimeoutMs = ms;
    this.armIdleTimer();
  }

  load(params: LoadParams, signal?: AbortSignal): Promise<LoadedModelInfo> {
    return this.call({ type: 'load', requestId: 0, ...params }, 'load', (r) => (r.type === 'loaded' ? { value: r.info } : undefined), signal);
  }

  /** How `image` becomes the model's input (preprocessing only; the model is loaded first if needed). */
  geometry(model: LoadParams, image: ImageInput, signal?: AbortSignal): Promise<ImageGeometry> {
    return this.call({ type: 'geometry', requestId: 0, model, image }, 'geometry', (r) => (r.type === 'geometry' ? { value: r.geometry } : undefined), signal);
  }


  /**
   * Streams the answer. The model in `model` is loaded first if the process does not hold it.
   * Aborting `options.signal` (or leaving the loop early) sends `cancel`; the stream then ends with
   * a `done` whose stopReason is 'aborted', or throws AbortedError.
   */
  async *generate(model: LoadParams, turns: ChatTurn[], options: GenerateOptions = {}): AsyncGenerator<GenerationEvent> {
    const { signal, ...wireOptions } = options;
    if (signal?.aborted) throw new AbortedError();
    const queue = new EventQueue<GenerationEvent>();
    let finished = false;
    const id = this.request({ type: 'generate', requestId: 0, model, turns, options: wireOptions }, {
      kind: 'generate',
      onResponse: (msg) => {
        if (msg.type === 'delta') queue.push({ type: 'delta', text: msg.text });
        else if (msg.type === 'done') {
          queue.push({ type: 'done', text: msg.text, stats: msg.stats, ...(msg.images ? { images: msg.images } : {}) });
          queue.end();
        } else if (msg.type === 'error') queue.end(deserializeError(msg.error));
      },
      onError: (err) => queue.end(err),
    });
    const cancel = () => this.send({ type: 'cancel', requestId: id });
    signal?.addEventListener('abort', cancel, { once: true });
    try {
      for (;;) {
        const r = await queue.next();
        if (r.done) break;
        yield r.value;
      }
      finished = true;
    } catch (err) {
      finished = true;
      throw err;
    } finally {
      signal?.removeEventListener('abort', cancel);
      // the consumer stopped reading early: stop the engine's work too
      if (!finished && this.pending.has(id)) cancel();
    }
  }

  status(): Promise<EngineStatusSnapshot | undefined> {
    if (!this.child) return Promise.resolve(undefined);
    return this.call({ type: 'status', requestId: 0 }, 'status', (r) => (r.type === 'status' ? { value: r.status } : undefined));
  }

  /** Frees the model but keeps the process (cheap next load of another model). */
  unload(): Promise<void> {
    if (!this.child) return Promise.resolve();
    return this.call({ type: 'unload', requestId: 0 }, 'unload', (r) => (r.type === 'unloaded' ? { value: undefined } : undefined));
  }

  /** Stops the process now; in-flight requests reject with EngineExitedError. */
  kill(): void {
    this.child?.kill('SIGKILL');
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.idleTimer);
    this.stop();
    this.stateEmitter.clear();
    this.logEmitter.clear();
    this.modelEmitter.clear();
  }

  // ---- internals ----------------------------------------------------------------------------

  /**
   * One request, one reply: resolves with what `pick` finds in the expected reply, rejects on an error
   * reply (or when the process dies); an abort of `signal` sends `cancel` for it.
   */
  private call<T>(msg: EngineRequest, kind: Pending['kind'], pick: (reply: EngineResponse) => { value: T } | undefined, signal?: AbortSignal): Promise<T> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new AbortedError());
      const id = this.request(msg, {
        kind,
        onResponse: (reply) => {
          const picked = pick(reply);
          if (picked) resolve(picked.value);
          else if (reply.type === 'error') reject(deserializeError(reply.error));
        },
        onError: reject,
      });
      signal?.addEventListener('abort', () => this.send({ type: 'cancel', requestId: id }), { once: true });
    });
  }

  private request(msg: EngineRequest, p: Pending): number {
    if (this.disposed) throw new Error('the engine client has been disposed');
    const id = this.nextId++;
    msg.requestId = id;
    this.pending.set(id, p);
    clearTimeout(this.idleTimer);
    this.ensureProcess();
    this.updateState();
    this.send(msg);
    return id;
  }

  private send(msg: EngineRequest): void {
    const child = this.child;
    if (!child || !child.connected) return;
    child.send(msg, (err) => {
      // the process died between the check and the write: 'exit' will reject the request
      if (err) this.logEmitter.fire(`engine: could not send ${msg.type}: ${err.message}`);
    });
  }

  private ensureProcess(): void {
    if (this.child) return;
    this.lastOutput = '';
    const child = fork(this.options.modulePath, [], {
      execPath: this.options.execPath ?? process.execPath,
      execArgv: this.options.execArgv ?? [],
      env: { ...process.env, ELECTRON_RUN_AS_NODE: '1', LLAVA_ENGINE_PROCESS: '1', ...this.options.env },
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    this.child = child;
    const onOutput = (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      this.lastOutput = (this.lastOutput + text).slice(-LAST_OUTPUT_CHARS);
      for (const line of text.split(/\r?\n/)) if (line.trim()) this.logEmitter.fire(`engine: ${line}`);
    };
    child.stdout?.on('data', onOutput);
    child.stderr?.on('data', onOutput);
    child.on('message', (msg) => this.onMessage(child, msg));
    child.on('error', (err) => {
      this.logEmitter.fire(`engine: process error: ${err.message}`);
      // a process that never started (no executable, no permission, no memory) sends no 'exit':
      // without this, every request waiting for it would hang forever
      if (child.pid === undefined) this.onExit(child, null, null, err);
    });
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    this.logEmitter.fire(`engine: started process ${child.pid}`);
  }

  private onMessage(child: ChildProcess, msg: unknown): void {
    if (child !== this.child) return;
    if (!isEngineResponse(msg)) {
      this.logEmitter.fire(`engine: ignored a malformed message`);
      return;
    }
    switch (msg.type) {
      case 'ready':
        return;
      case 'log':
        this.logEmitter.fire(msg.line);
        return;
      case 'modelLoaded':
        this._modelInfo = msg.info;
        this.modelEmitter.fire(msg.info);
        this.updateState();
        return;
    }
    const p = this.pending.get(msg.requestId);
    if (!p) return;
    // loading a model inside a generate shows as 'loading' until the first delta
    if (msg.type === 'delta' && this._state !== 'generating') this.updateState();
    p.onResponse(msg);
    const final = msg.type !== 'delta';
    if (final) {
      this.pending.delete(msg.requestId);
      this.updateState(msg.type === 'error' && msg.error.code !== 'ABORTED' ? 'error' : undefined);
      this.armIdleTimer();
    }
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void {
    if (child !== this.child) return;
    this.child = undefined;
    const hadModel = this._modelInfo !== undefined;
    this._modelInfo = undefined;
    if (hadModel) this.modelEmitter.fire(undefined);
    const inFlight = [...this.pending.values()];
    this.pending.clear();
    const expected = this.stopping;
    this.stopping = false;
    this.logEmitter.fire(
      spawnError ? `engine: the process could not be started (${spawnError.message})` : `engine: process ${child.pid} ${signal ? `killed by ${signal}` : `exited with code ${code}`}`,
    );
    const err = new EngineExitedError(code, signal, spawnError ? spawnError.message : this.lastOutput.trim());
    for (const p of inFlight) p.onError(err);
    this.setState(expected && inFlight.length === 0 ? 'stopped' : 'error');
  }

  private stopping = false;

  /** Graceful stop: closing the IPC channel makes the server dispose its model and exit. */
  private stop(): void {
    const child = this.child;
    if (!child) return;
    this.stopping = true;
    if (child.connected) child.disconnect();
    const force = setTimeout(() => child.kill('SIGKILL'), 3000);
    force.unref();
    child.once('exit', () => clearTimeout(force));
  }

  private armIdleTimer(): void {
    clearTimeout(this.idleTimer);
    if (!this.idleTimeoutMs || !this.child || this.pending.size) return;
    this.idleTimer = setTimeout(() => {
      if (this.pending.size) return;
      this.logEmitter.fire(`engine: idle for ${Math.round(this.idleTimeoutMs / 60000)} min, stopping the process`);
      this.stop();
    }, this.idleTimeoutMs);
    // an idle engine must not keep a CLI or test process alive
    this.idleTimer.unref();
  }

  private updateState(forced?: EngineState): void {
    if (forced) return this.setState(forced);
    const kinds = [...this.pending.values()].map((p) => p.kind);
    if (!this.child) return this.setState('stopped');
    if (kinds.includes('load')) return this.setState('loading');
    if (kinds.includes('generate')) return this.setState(this._modelInfo ? 'generating' : 'loading');
    this.setState('idle');
  }

  private setState(s: EngineState): void {
    if (s === this._state) return;
    this._state = s;
    this.stateEmitter.fire(s);
  }
}
