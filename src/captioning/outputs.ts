// Where captions go, written so that a run killed at any instant (SIGKILL, power loss) leaves every
// output complete or absent, and a rerun can tell what is done:
//   - sidecar files (`photo.txt` next to `photo.png`): temp file in the same folder + fsync + rename;
//   - manifests (JSONL or CSV): one record per image appended with a single write + fsync. A torn last
//     record (the kill landed inside a write) is cut off when the manifest is opened again, so the image
//     it described is simply redone. Readers take the last record per path; a run ends by compacting.
// No vscode import: the CLI, the VS Code command (extension host) and tests share this.

import { promises as fsp, existsSync, readdirSync, unlinkSync } from 'node:fs';
import * as path from 'node:path';
import { FileRefusedError } from '../core';
import { readRegularFile } from '../files';

const TMP_MARK = '.llava-tmp-';

/** Writes `data` to `file` atomically: readers see the old content or the new, never a part. */
export async function writeFileAtomic(file: string, data: string): Promise<void> {
  const dir = path.dirname(file);
  // Hidden, in the same folder (rename is atomic only within one file system), named by our pid so a
  // later run can remove what a killed run left behind (removeStaleTempFiles).
  const tmp = path.join(dir, `.${path.basename(file)}${TMP_MARK}${process.pid}-${Math.random().toString(36).slice(2, 8)}`);
  const handle = await fsp.open(tmp, 'w');
  try {
    await handle.writeFile(data, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await fsp.rename(tmp, file);
  } catch (err) {
    await fsp.unlink(tmp).catch(() => {});
    throw err;
  }
  await syncDir(dir);
}

/** fsync a directory so a rename survives a power loss (Linux/macOS; Windows cannot open folders). */
async function syncDir(dir: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(dir, 'r');
    await handle.sync();
  } catch {
    // best effort
  } finally {
    await handle?.close().catch(() => {});
  }
}

/** Removes temp files of writeFileAtomic left in `dir` by processes that no longer run. */
export function removeStaleTempFiles(dir: string): number {
  let removed = 0;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const at = name.indexOf(TMP_MARK);
    if (!name.startsWith('.') || at < 0) continue;
    const pid = Number.parseInt(name.slice(at + TMP_MARK.length), 10);
    if (pid === process.pid || (Number.isFinite(pid) && processAlive(pid))) continue;
    try {
      unlinkSync(path.join(dir, name));
      removed++;
    } catch {
      // already gone
    }
  }
  return removed;
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `photo.png` -> `photo.txt` (the convention of TagGUI, kohya and most training tools). */
export function sidecarPath(imagePath: string, ext = '.txt'): string {
  const e = ext.startsWith('.') ? ext : `.${ext}`;
  const parsed = path.parse(imagePath);
  return path.join(parsed.dir, parsed.name + e);
}

/** Largest sidecar read back (for {existing} and append); a caption is a few lines of text. */
export const MAX_SIDECAR_BYTES = 1024 * 1024;

/**
 * The caption already next to an image, or undefined when there is none. Read like every workspace
 * file (src/files): a regular file inside the image's folder, bounded; a FIFO or a link out is refused.
 */
export async function readSidecar(file: string): Promise<string | undefined> {
  try {
    return (await readRegularFile(file, { maxBytes: MAX_SIDECAR_BYTES, root: path.dirname(file) })).toString('utf8');
  } catch (err) {
    if (err instanceof FileRefusedError && err.reason === 'missing') return undefined;
    throw err;
  }
}

// ---- manifests ------------------------------------------------------------------------------

export interface CaptionRecord {
  /** as written: relative to the manifest's folder when inside it, else absolute; '/' separators */
  path: string;
  caption: string;
  model: string;
  variant: string;
  prompt: string;
  /** seconds spent on this image (its batch's time up to its caption) */
  seconds: number;
  /** '' on success, else `CODE: message` */
  error: string;
}

export type ManifestFormat = 'jsonl' | 'csv';

export const CSV_COLUMNS: readonly (keyof CaptionRecord)[] = ['path', 'caption', 'model', 'variant', 'prompt', 'seconds', 'error'];

/** RFC 4180: quote a field holding a comma, quote, CR or LF (or leading/trailing space); double quotes. */
/**
 * One CSV field (RFC 4180 quoting). A text cell that a spreadsheet would run as a formula (starting
 * with = + - @, or a tab / carriage return before one) gets a leading apostrophe: a model's caption of a
 * hostile image must not become `=HYPERLINK(...)` in Excel. Numbers are written as they are.
 */
export function csvField(value: string | number): string {
  // apostrophes already in front are counted in, so that readCsvCell gives back exactly what was written
  const s = typeof value === 'number' ? String(value) : /^'*[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]|^\s|\s$/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** A cell as read back from our CSV: the apostrophe csvField put before a formula-like text removed. */
export function readCsvCell(cell: string): string {
  return /^'+[=+\-@\t\r]/.test(cell) ? cell.slice(1) : cell;
}

export function csvLine(fields: (string | number)[]): string {
  return fields.map(csvField).join(',') + '\r\n';
}

/**
 * Parses RFC 4180 text. Returns complete records (each ended by a line break outside quotes) and the
 * character offset just after the last complete one; anything beyond it is a torn record.
 */
export function parseCsv(text: string): { records: string[][]; completeChars: number } {
  const records: string[][] = [];
  let completeChars = 0;
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
      } else field += c;
      i++;
      continue;
    }
    if (c === '"' && field === '') quoted = true;
    else if (c === ',') {
      fields.push(field);
      field = '';
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      fields.push(field);
      records.push(fields);
      fields = [];
      field = '';
      completeChars = i + 1;
    } else field += c;
    i++;
  }
  return { records, completeChars };
}

function serialize(format: ManifestFormat, r: CaptionRecord): string {
  if (format === 'jsonl') return JSON.stringify(r) + '\n';
  return csvLine(CSV_COLUMNS.map((k) => r[k]));
}

function toRecord(raw: Record<string, unknown>): CaptionRecord | undefined {
  if (typeof raw.path !== 'string' || !raw.path) return undefined;
  return {
    path: raw.path,
    caption: String(raw.caption ?? ''),
    model: String(raw.model ?? ''),
    variant: String(raw.variant ?? ''),
    prompt: String(raw.prompt ?? ''),
    seconds: Number(raw.seconds ?? 0) || 0,
    error: String(raw.error ?? ''),
  };
}

/**
 * An append-only JSONL or CSV manifest. `open()` reads what is there, cuts a torn last record, and keeps
 * the file open for appends; `append()` returns once the record is on disk.
 */
export class Manifest {
  private handle: fsp.FileHandle | undefined;
  /** every record in file order (a path may appear more than once: the last one wins) */
  readonly records: CaptionRecord[] = [];
  /** bytes cut from a torn last record when opened (0 when the file was whole) */
  repairedBytes = 0;

  private constructor(
    readonly file: string,
    readonly format: ManifestFormat,
  ) {}

  static formatOf(file: string, fallback: ManifestFormat = 'jsonl'): ManifestFormat {
    const ext = path.extname(file).toLowerCase();
    return ext === '.csv' ? 'csv' : ext === '.jsonl' || ext === '.ndjson' ? 'jsonl' : fallback;
  }

  static async open(file: string, format: ManifestFormat = Manifest.formatOf(file)): Promise<Manifest> {
    const m = new Manifest(path.resolve(file), format);
    await fsp.mkdir(path.dirname(m.file), { recursive: true });
    const bytes = existsSync(m.file) ? await fsp.readFile(m.file) : Buffer.alloc(0);
    const keep = m.load(bytes.toString('utf8'));
    const keepBytes = Buffer.byteLength(bytes.toString('utf8').slice(0, keep), 'utf8');
    if (keepBytes < bytes.length) {
      m.repairedBytes = bytes.length - keepBytes;
      await fsp.truncate(m.file, keepBytes);
    }
    m.handle = await fsp.open(m.file, 'a');
    if (format === 'csv' && keepBytes === 0) await m.write(csvLine([...CSV_COLUMNS]));
    return m;
  }

  /** Parses the text into `records`; returns the character length of the part to keep. */
  private load(text: string): number {
    if (this.format === 'jsonl') {
      const end = text.lastIndexOf('\n') + 1; // a last line without its newline is torn, even if it parses
      for (const line of text.slice(0, end).split('\n')) {
        if (!line.trim()) continue;
        try {
          const r = toRecord(JSON.parse(line) as Record<string, unknown>);
          if (r) this.records.push(r);
        } catch {
          // a damaged line in the middle (edited by hand?): ignore it, its image will be redone
        }
      }
      return end;
    }
    const { records, completeChars } = parseCsv(text);
    const [header, ...rows] = records;
    const columns = header ?? [...CSV_COLUMNS];
    for (const row of rows) {
      if (row.length !== columns.length) continue;
      const r = toRecord(Object.fromEntries(columns.map((c, i) => [c, readCsvCell(row[i])])));
      if (r) this.records.push(r);
    }
    return completeChars;
  }

  /** The path as stored: relative to the manifest's folder when inside it, '/' separated. */
  key(imagePath: string): string {
    const abs = path.resolve(imagePath);
    const rel = path.relative(path.dirname(this.file), abs);
    const inside = rel && !rel.startsWith('..') && !path.isAbsolute(rel);
    return (inside ? rel : abs).split(path.sep).join('/');
  }

  /** The last record of each path, by key. */
  latest(): Map<string, CaptionRecord> {
    const out = new Map<string, CaptionRecord>();
    for (const r of this.records) out.set(r.path, r);
    return out;
  }

  /** Paths whose last record is a success: done, a rerun skips them. */
  successes(): Map<string, CaptionRecord> {
    return new Map([...this.latest()].filter(([, r]) => !r.error));
  }

  async append(record: CaptionRecord): Promise<void> {
    await this.write(serialize(this.format, record));
    this.records.push(record);
  }

  private async write(text: string): Promise<void> {
    if (!this.handle) throw new Error(`${this.file} is closed`);
    // One write call per record, then fsync: a kill loses at most this record, and then only its tail.
    await this.handle.write(text);
    await this.handle.sync();
  }

  /** True when some path has more than one record (a rerun, overwrite or append left older ones). */
  needsCompaction(): boolean {
    return new Set(this.records.map((r) => r.path)).size !== this.records.length;
  }

  /** Rewrites the file (atomically) with one record per path, its last; order of first appearance. */
  async compact(): Promise<void> {
    const latest = this.latest();
    const kept = [...latest.values()];
    const header = this.format === 'csv' ? csvLine([...CSV_COLUMNS]) : '';
    await this.close();
    await writeFileAtomic(this.file, header + kept.map((r) => serialize(this.format, r)).join(''));
    this.records.splice(0, this.records.length, ...kept);
    this.handle = await fsp.open(this.file, 'a');
  }

  async close(): Promise<void> {
    const h = this.handle;
    this.handle = undefined;
    await h?.close();
  }
}
