// Runs `llava convert` in a child process and reports its progress: the extension host uses it so
// that a conversion of many minutes neither blocks the host nor loads the converter into it, and the
// end-to-end test uses the same function under plain Node. Cancel (the signal) kills the child; the
// converter keeps every finished part, so running again resumes.

import { spawn } from 'node:child_process';
import { AbortedError, EngineError, type EngineErrorCode } from '../core';
import { LineSplitter, parseCliError, parseProgressLine, type ConvertDoneLine, type ConvertProgressLine } from './progress';

export interface RunConvertOptions {
  /** the bundled CLI, dist/cli.js */
  cliPath: string;
  from: string;
  out: string;
  dtype: string;
  /** the Node binary: VS Code's own (process.execPath, run as Node through ELECTRON_RUN_AS_NODE) by default */
  execPath?: string;
  signal?: AbortSignal;
  onProgress?: (p: ConvertProgressLine) => void;
  /** every line the child writes that is not progress (the log behind an error) */
  onLog?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

/** The child failed: its own error line in words, its code when it gave one, and the tail of what it wrote. */
export class ConvertProcessError extends EngineError {
  constructor(code: EngineErrorCode, message: string, readonly log: string, readonly exitCode: number | null) {
    super(code, message);
  }
}

/** Codes a `llava convert` child can end with that the caller words differently; any other becomes CONVERT. */
const PASSED_CODES: readonly string[] = ['CONVERT', 'DISK_SPACE', 'MODEL_FOLDER', 'FILE_REFUSED'];
const LOG_TAIL_LINES = 200;

export function convertArgs(opts: Pick<RunConvertOptions, 'cliPath' | 'from' | 'out' | 'dtype'>): string[] {
  return [opts.cliPath, 'convert', '--from', opts.from, '--out', opts.out, '--dtype', opts.dtype, '--progress', 'json'];
}

export function runConvert(opts: RunConvertOptions): Promise<ConvertDoneLine> {
  return new Promise((resolve, reject) => {
    if (opts.signal?.aborted) return reject(new AbortedError('Conversion cancelled'));
    const child = spawn(opts.execPath ?? process.execPath, convertArgs(opts), {
      env: { ...(opts.env ?? process.env), ELECTRON_RUN_AS_NODE: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    const log: string[] = [];
    const keep = (line: string) => {
      if (!line.trim()) return;
      log.push(line);
      if (log.length > LOG_TAIL_LINES) log.shift();
      opts.onLog?.(line);
    };
    let done: ConvertDoneLine | undefined;
    let cancelled = false;
    const onAbort = () => {
      cancelled = true;
      child.kill('SIGTERM'); // the converter writes each part through .partial files, so a kill leaves no half part behind
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    const out = new LineSplitter();
    const onOut = (line: string) => {
      const p = parseProgressLine(line);
      if (p?.type === 'progress') opts.onProgress?.(p);
      else if (p?.type === 'done') done = p;
      else keep(line);
    };
    child.stdout.setEncoding('utf8').on('data', (c: string) => out.push(c).forEach(onOut));
    const err = new LineSplitter();
    child.stderr.setEncoding('utf8').on('data', (c: string) => err.push(c).forEach(keep));

    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new ConvertProcessError('CONVERT', `could not start the converter (${e.message})`, log.join('\n'), null));
    });
    child.on('close', (code, signal) => {
      opts.signal?.removeEventListener('abort', onAbort);
      out.end().forEach(onOut);
      err.end().forEach(keep);
      if (cancelled) return reject(new AbortedError('Conversion cancelled'));
      if (code === 0 && done) return resolve(done);
      const last = [...log].reverse().map(parseCliError).find((e) => e !== undefined);
      const why = last?.message ?? (signal ? `the converter was stopped (${signal})` : `the converter exited with code ${code} without saying why`);
      const errCode = (last?.code && PASSED_CODES.includes(last.code) ? last.code : 'CONVERT') as EngineErrorCode;
      reject(new ConvertProcessError(errCode, why, log.join('\n'), code));
    });
  });
}

/** A failed conversion in words for the user (the log behind it goes to the output channel). */
export function describeConvertFailure(err: unknown, label: string): string {
  if (err instanceof AbortedError) return `Conversion of ${label} cancelled. The finished parts are kept: converting again resumes.`;
  if (err instanceof EngineError) {
    switch (err.code) {
      case 'DISK_SPACE':
        return `Not enough free disk space to convert ${label}: ${err.message}. Free some space (or set llava.modelsFolder to a bigger disk) and convert again; finished parts are kept.`;
      case 'CONVERT':
        return `Could not convert ${label}: ${err.message}. The checkpoint may be incomplete or not a LLaVA-1.5 layout; the log has the converter's output.`;
      default:
        return `Could not convert ${label}: ${err.message} [${err.code}].`;
    }
  }
  return `Could not convert ${label}: ${(err as Error)?.message ?? String(err)}.`;
}
