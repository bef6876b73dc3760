// The process boundary between the extension host (EngineClient) and the forked engine process
// (server.ts). Messages travel with `serialization: 'advanced'` (structured clone), so typed arrays
// such as image bytes cross without base64. Every request carries a `requestId`; every reply names it.
// Nothing here may import `vscode`: the engine process and plain-Node tests load this file.

import type {
  VariantChoice,
  ChatTurn,
  ExecutionProviderChoice,
  GenerateOptions,
  GenerationStats,
  ImageGeometry,
  ImageInput,
  LoadedModelInfo,
} from '../core';
import { AbortedError, EngineError, EXECUTION_PROVIDER_CHOICES, type EngineErrorCode } from '../core';

/** What the engine needs to load (or reuse) a model. Sent with `load` and with every `generate`. */
export interface LoadParams {
  modelDir: string;
  provider: ExecutionProviderChoice;
  /** 0 = let onnxruntime choose */
  threads: number;
  /** the ONNX weight variant of every part (`'q4'`) or of some parts (`{decoder: 'q4'}`); parts not
   *  named (or undefined) = the engine's per-provider choice among the files present */
  variant?: VariantChoice;
  /** MiB of KV cache kept for follow-up questions; undefined = the engine's default, 0 = off */
  prefixCacheMB?: number;
}

/** GenerateOptions minus the AbortSignal, which cannot be cloned: cancellation travels as `cancel`. */
export type WireGenerateOptions = Omit<GenerateOptions, 'signal'>;

// ---- host -> engine -------------------------------------------------------------------------

export type EngineRequest =
  | ({ type: 'load'; requestId: number } & LoadParams)
  | {
      type: 'generate';
      requestId: number;
      /** loaded first when no model, or a different one, is loaded (lazy load; restart-safe) */
      model: LoadParams;
      turns: ChatTurn[];
      options: WireGenerateOptions;
    }
  /** aborts the generate (or load) with this id; unknown ids are ignored (it may have just finished) */
  | { type: 'cancel'; requestId: number }
  | { type: 'unload'; requestId: number }
  | { type: 'status'; requestId: number }
  /** how `image` becomes this model's input, without running the model (a region the user drew -> model frame) */
  | { type: 'geometry'; requestId: number; model: LoadParams; image: ImageInput };

// ---- engine -> host -------------------------------------------------------------------------

export interface EngineStatusSnapshot {
  pid: number;
  loaded: LoadedModelInfo | undefined;
  busy: boolean;
  /** resident set size of the engine process, bytes */
  rssBytes: number;
}

export type EngineResponse =
  /** first message after start: the process is listening */
  | { type: 'ready'; pid: number }
  /** a model finished loading, whether asked by `load` or lazily by `generate` */
  | { type: 'modelLoaded'; info: LoadedModelInfo }
  | { type: 'loaded'; requestId: number; info: LoadedModelInfo }
  | { type: 'delta'; requestId: number; text: string }
  /** `images`: each conversation image's preprocessing geometry, in order (grounding maps boxes with it) */
  | { type: 'done'; requestId: number; text: string; stats: GenerationStats; images?: ImageGeometry[] }
  | { type: 'geometry'; requestId: number; geometry: ImageGeometry }
  | { type: 'unloaded'; requestId: number }
  | { type: 'status'; requestId: number; status: EngineStatusSnapshot }
  | { type: 'error'; requestId: number; error: SerializedError }
  | { type: 'log'; line: string };

// ---- errors ---------------------------------------------------------------------------------

/** An error as it crosses the boundary: EngineError's stable code, or INTERNAL for anything else. */
export interface SerializedError {
  code: EngineErrorCode | 'INTERNAL';
  name: string;
  message: string;
  stack?: string;
}

const ENGINE_CODES: ReadonlySet<string> = new Set<EngineErrorCode>([
  'MODEL_LOAD',
  'MODEL_FOLDER',
  'IMAGE_DECODE',
  'IMAGE_TOO_LARGE',
  'PROVIDER',
  'ABORTED',
  'GENERATION',
  'DOWNLOAD',
  'CHECKSUM',
  'DOWNLOAD_LOCKED',
  'DISK_SPACE',
  'CONTEXT_OVERFLOW',
  'FILE_REFUSED',
]);

export function serializeError(err: unknown): SerializedError {
  if (err instanceof EngineError) {
    return { code: err.code, name: err.name, message: err.message, stack: err.stack };
  }
  if (err instanceof Error) {
    // DOMException AbortError from signal.throwIfAborted() is a cancellation, not a bug
    if (err.name === 'AbortError') return { code: 'ABORTED', name: 'AbortedError', message: err.message };
    return { code: 'INTERNAL', name: err.name, message: err.message, stack: err.stack };
  }
  return { code: 'INTERNAL', name: 'Error', message: String(err) };
}

/** Rebuilds a typed error on the host: `instanceof EngineError` and `.code` keep working. */
export function deserializeError(e: SerializedError): Error {
  if (e.code === 'ABORTED') return new AbortedError(e.message);
  let err: Error;
  if (ENGINE_CODES.has(e.code)) {
    err = new EngineError(e.code as EngineErrorCode, e.message);
    err.name = e.name;
  } else {
    err = new Error(e.message);
    err.name = e.name;
  }
  if (e.stack) err.stack = `${err.name}: ${e.message}\n    (in the engine process)\n${e.stack.split('\n').slice(1).join('\n')}`;
  return err;
}

/**
 * The engine process exited (crash, native abort, out of memory, killed) while this request was
 * in flight. The next request starts a fresh process.
 */
export class EngineExitedError extends Error {
  readonly code = 'ENGINE_EXITED';
  constructor(
    readonly exitCode: number | null,
    readonly signal: string | null,
    readonly lastOutput: string,
  ) {
    const how = signal ? `was killed by ${signal}` : exitCode === null ? 'could not be started' : `exited with code ${exitCode}`;
    super(`The LLaVA engine process ${how}.${lastOutput ? ` Last output: ${lastOutput}` : ''}`);
    this.name = 'EngineExitedError';
  }
}

// ---- guards ---------------------------------------------------------------------------------
// Messages come from another process (or, in tests, anything): check the envelope before trusting it.

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

function isLoadParams(v: unknown): v is LoadParams {
  return (
    isObject(v) &&
    typeof v.modelDir === 'string' &&
    typeof v.provider === 'string' &&
    (EXECUTION_PROVIDER_CHOICES as readonly string[]).includes(v.provider) &&
    typeof v.threads === 'number' &&
    Number.isInteger(v.threads) &&
    v.threads >= 0
  );
}

function isTurn(v: unknown): v is ChatTurn {
  return (
    isObject(v) &&
    (v.role === 'user' || v.role === 'assistant') &&
    typeof v.text === 'string' &&
    (v.images === undefined || Array.isArray(v.images))
  );
}

export function isEngineRequest(v: unknown): v is EngineRequest {
  if (!isObject(v) || typeof v.type !== 'string' || typeof v.requestId !== 'number') return false;
  switch (v.type) {
    case 'load':
      return isLoadParams(v);
    case 'generate':
      return isLoadParams(v.model) && Array.isArray(v.turns) && v.turns.every(isTurn) && isObject(v.options);
    case 'geometry':
      return isLoadParams(v.model) && isObject(v.image);
    case 'cancel':
    case 'unload':
    case 'status':
      return true;
    default:
      return false;
  }
}

export function isEngineResponse(v: unknown): v is EngineResponse {
  if (!isObject(v) || typeof v.type !== 'string') return false;
  switch (v.type) {
    case 'ready':
      return typeof v.pid === 'number';
    case 'log':
      return typeof v.line === 'string';
    case 'modelLoaded':
      return isObject(v.info);
    case 'loaded':
      return typeof v.requestId === 'number' && isObject(v.info);
    case 'delta':
      return typeof v.requestId === 'number' && typeof v.text === 'string';
    case 'done':
      return (
        typeof v.requestId === 'number' &&
        typeof v.text === 'string' &&
        isObject(v.stats) &&
        (v.images === undefined || (Array.isArray(v.images) && v.images.every(isObject)))
      );
    case 'geometry':
      return typeof v.requestId === 'number' && isObject(v.geometry);
    case 'unloaded':
      return typeof v.requestId === 'number';
    case 'status':
      return typeof v.requestId === 'number' && isObject(v.status);
    case 'error':
      return (
        typeof v.requestId === 'number' &&
        isObject(v.error) &&
        typeof v.error.code === 'string' &&
        typeof v.error.message === 'string'
      );
    default:
      return false;
  }
}
