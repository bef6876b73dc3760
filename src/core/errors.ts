// Typed errors thrown by the engine. The engine never shows UI: callers (CLI, extension, tests)
// decide how to present them. `code` is stable and travels across the process boundary.

export type EngineErrorCode =
  | 'MODEL_LOAD'
  | 'MODEL_FOLDER'
  | 'IMAGE_DECODE'
  | 'IMAGE_TOO_LARGE'
  | 'PROVIDER'
  | 'ABORTED'
  | 'GENERATION'
  | 'DOWNLOAD'
  | 'CHECKSUM'
  | 'DOWNLOAD_LOCKED'
  | 'DISK_SPACE'
  | 'CONTEXT_OVERFLOW'
  | 'REMOTE'
  | 'EVAL_DATA'
  | 'JUDGE'
  | 'CONVERT'
  | 'FILE_REFUSED';

/**
 * A message as one line: libvips / libheif / libjpeg reasons come with newlines and runs of spaces; a
 * user reads one line naming the file and the reason. Long ones are cut.
 */
export function oneLine(message: string, max = 500): string {
  const s = message.replace(/\s*[\r\n]+\s*/g, '; ').replace(/[ \t]{2,}/g, ' ').replace(/(; )+$/, '').trim();
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

export class EngineError extends Error {
  constructor(
    readonly code: EngineErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(oneLine(message), options);
    this.name = new.target.name;
  }
}

/** A model folder is missing a file, has an unreadable file or contradicts itself. `file` names the culprit. */
export class ModelFolderError extends EngineError {
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super('MODEL_FOLDER', `${file}: ${message}`, options);
  }
}

/** ONNX Runtime could not create a session from a file that the folder reader accepted. */
export class ModelLoadError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('MODEL_LOAD', message, options);
  }
}

/** The bytes are not an image sharp can decode (unsupported format, truncated, corrupt). */
export class ImageDecodeError extends EngineError {
  constructor(readonly source: string, message: string, options?: { cause?: unknown }) {
    super('IMAGE_DECODE', `${source}: ${message}`, options);
  }
}

/** The image (file bytes or decoded pixels) exceeds the configured bounds. */
export class ImageTooLargeError extends EngineError {
  constructor(readonly source: string, message: string) {
    super('IMAGE_TOO_LARGE', `${source}: ${message}`);
  }
}

/** An explicitly requested execution provider cannot be used here. */
export class ProviderError extends EngineError {
  constructor(readonly provider: string, message: string, options?: { cause?: unknown }) {
    super('PROVIDER', message, options);
  }
}

export class AbortedError extends EngineError {
  constructor(message = 'Cancelled') {
    super('ABORTED', message);
  }
}

export class DownloadError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DOWNLOAD', message, options);
  }
}

export class ChecksumError extends EngineError {
  constructor(readonly file: string, readonly expected: string, readonly actual: string) {
    super('CHECKSUM', `${file}: sha256 ${actual} does not match the expected ${expected}`);
  }
}

/** Another process holds the download lock of this model folder (`holder` says who, when known). */
export class DownloadLockedError extends EngineError {
  constructor(readonly folder: string, message: string) {
    super('DOWNLOAD_LOCKED', message);
  }
}

/** Not enough free space for a download; the numbers are in the message and on the error. */
export class DiskSpaceError extends EngineError {
  constructor(
    readonly folder: string,
    readonly neededBytes: number,
    readonly freeBytes: number,
    message = `${folder}: needs ${(neededBytes / 2 ** 30).toFixed(2)} GiB free, has ${(freeBytes / 2 ** 30).toFixed(2)} GiB`,
  ) {
    super('DISK_SPACE', message);
  }
}

/**
 * The prompt (text + image rows) plus the tokens asked for does not fit the decoder's context
 * window. Callers either shorten the conversation and retry or show the message.
 */
export class ContextOverflowError extends EngineError {
  constructor(readonly promptTokens: number, readonly maxNewTokens: number, readonly contextLength: number, message: string) {
    super('CONTEXT_OVERFLOW', message);
  }
}

/** An evaluation data file (problems.json, a .jsonl question file, ...) is missing, too large or malformed. `file` names it. */
export class EvalDataError extends EngineError {
  constructor(readonly file: string, message: string, options?: { cause?: unknown }) {
    super('EVAL_DATA', `${file}: ${message}`, options);
  }
}

/** The judge model's endpoint failed or answered with something that is not a chat completion. */
export class JudgeError extends EngineError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('JUDGE', message, options);
  }
}

/** A checkpoint cannot be converted: unreadable file, unknown name layout, missing or misshapen tensor. `subject` names the file or tensor. */
export class ConvertError extends EngineError {
  constructor(readonly subject: string, message: string, options?: { cause?: unknown }) {
    super('CONVERT', `${subject}: ${message}`, options);
  }
}

/** Why a workspace file was not read (see src/files/). */
export type FileRefusal = 'missing' | 'dangling-link' | 'outside' | 'not-regular' | 'too-large' | 'unreadable';

/**
 * A file that is not read at all: missing, a dangling link, a link leaving the allowed folder, not a
 * regular file (FIFO, device, socket, folder), over the size bound, or unreadable. `file` names it.
 */
export class FileRefusedError extends EngineError {
  constructor(readonly file: string, readonly reason: FileRefusal, message: string, options?: { cause?: unknown }) {
    super('FILE_REFUSED', `${file}: ${message}`, options);
  }
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError();
}

/** A remote (OpenAI-compatible) server could not be reached or refused a request; `status` is the HTTP status (0: no answer). */
export class RemoteError extends EngineError {
  constructor(readonly status: number, message: string, options?: { cause?: unknown }) {
    super('REMOTE', message, options);
  }
}
