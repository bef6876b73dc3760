// The converter's machine-readable progress (`llava convert --progress json`): one JSON object per
// line on stdout. Written by the CLI (formatProgressLine) and read back by the runner that drives the
// child process (parseProgressLine), so both ends share one shape. The ETA is computed by the child
// from bytes read over elapsed time; the parent only shows it.

export interface ConvertProgressLine {
  type: 'progress';
  /** the part being written, onnx/<session><suffix>.onnx */
  part: string;
  partIndex: number;
  partCount: number;
  state: 'start' | 'tensor' | 'skipped' | 'done';
  /** checkpoint bytes read so far over all parts, and in all */
  bytesRead: number;
  bytesTotal: number;
  /** seconds since the conversion started, and the estimate of seconds left (undefined before any rate is known) */
  elapsedS: number;
  etaS?: number;
}

export interface ConvertDoneLine {
  type: 'done';
  out: string;
  written: number;
  skipped: number;
  seconds: number;
}

export type ConvertOutputLine = ConvertProgressLine | ConvertDoneLine;

/** Seconds left at the mean rate so far; undefined until a second has passed and some bytes were read. */
export function estimateEta(bytesRead: number, bytesTotal: number, elapsedS: number, bytesSkipped = 0): number | undefined {
  const worked = bytesRead - bytesSkipped; // parts skipped as already done cost no time: they would inflate the rate
  if (elapsedS < 1 || worked <= 0) return undefined;
  return Math.max(0, (bytesTotal - bytesRead) / (worked / elapsedS));
}

export function formatProgressLine(line: ConvertOutputLine): string {
  return `${JSON.stringify(line)}\n`;
}

const STATES = new Set(['start', 'tensor', 'skipped', 'done']);
const count = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/** One line of the child's stdout -> a progress or done record; anything else (a log line, garbage) -> undefined. */
export function parseProgressLine(text: string): ConvertOutputLine | undefined {
  const t = text.trim();
  if (!t.startsWith('{')) return undefined;
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(t) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (!o || typeof o !== 'object') return undefined;
  if (o.type === 'progress') {
    if (typeof o.part !== 'string' || typeof o.state !== 'string' || !STATES.has(o.state)) return undefined;
    if (![o.partIndex, o.partCount, o.bytesRead, o.bytesTotal, o.elapsedS].every(count)) return undefined;
    return {
      type: 'progress',
      part: o.part,
      partIndex: o.partIndex as number,
      partCount: o.partCount as number,
      state: o.state as ConvertProgressLine['state'],
      bytesRead: o.bytesRead as number,
      bytesTotal: o.bytesTotal as number,
      elapsedS: o.elapsedS as number,
      ...(count(o.etaS) ? { etaS: o.etaS } : {}),
    };
  }
  if (o.type === 'done') {
    if (typeof o.out !== 'string' || ![o.written, o.skipped, o.seconds].every(count)) return undefined;
    return { type: 'done', out: o.out, written: o.written as number, skipped: o.skipped as number, seconds: o.seconds as number };
  }
  return undefined;
}

/** Splits a byte stream into lines (a chunk may end mid-line). */
export class LineSplitter {
  private rest = '';
  push(chunk: string): string[] {
    const text = this.rest + chunk;
    const lines = text.split('\n');
    this.rest = lines.pop() ?? '';
    if (this.rest.length > 1_000_000) this.rest = ''; // a child writing one endless line: drop it, never grow without bound
    return lines;
  }
  end(): string[] {
    const last = this.rest;
    this.rest = '';
    return last ? [last] : [];
  }
}

/** "2 h 05 min", "14 min", "40 s" */
export function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return 'estimating time left';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s left`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min left`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, '0')} min left`;
}

/** The child's error line, `llava: <message> [<CODE>]` (src/cli/index.ts describeError). */
export function parseCliError(line: string): { message: string; code?: string } | undefined {
  const m = /^llava: (.*?)(?: \[([A-Z_]+)\])?\s*$/.exec(line);
  return m ? { message: m[1], ...(m[2] ? { code: m[2] } : {}) } : undefined;
}
