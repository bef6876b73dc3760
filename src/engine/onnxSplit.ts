// A copy of an ONNX file with inline weights, split into its graph and an external data file, made once beside
// the model and loaded instead of the original. Hub exports under 2 GB keep their weights inline (the default q4
// decoders of nanoLLaVA and LLaVA-OneVision among them); ONNX Runtime parses such a file whole before it reads a
// weight, and the engine cannot edit a graph it cannot read without its weights (onnxView.ts). Split, with every
// weight at a 4 KiB-aligned offset of `<name>_data`, the same model loads in about half the time and its decoder
// gets the last-position edit (bench/README.md: bench-207m, 672 MB fp32 decoder: load 4.4 s against 8-11 s,
// time to first token 0.85x).
//
// The copy lives in `.llava-external/<name>.<size>-<mtime>/` next to the file, so the downloaded file and its
// manifest stay as fetched; a changed source (other size or modification time) makes a new copy and removes the
// old. It is written under a temporary name and renamed into place, so a process that stops half-way leaves
// nothing that looks complete, and two processes splitting at once both end with a whole copy. It costs the
// file's size again on disk; where the disk lacks that (plus a margin) or the folder is read-only, the file is
// loaded as it is.

import { closeSync, existsSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, statfsSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import { CHILDREN, FileReader, fields, LEN, MAX_INLINE_BYTES, VARINT, weightless, type Kind } from './onnxView';

/** files with fewer bytes than this are loaded as they are (parsing them is quick) */
export const SPLIT_MIN_BYTES = 128 * 2 ** 20;
/** a decoder's threshold: its copy also takes the last-position edit, which every prefill gains from */
export const SPLIT_DECODER_MIN_BYTES = 16 * 2 ** 20;
export const SPLIT_FOLDER = '.llava-external';
/** kept free beyond the copy */
const DISK_MARGIN_BYTES = 256 * 2 ** 20;
/** weights start at multiples of this in the data file (ONNX Runtime maps aligned external data page-wise) */
const ALIGN = 4096;
const COPY_CHUNK = 8 * 2 ** 20;

// TensorProto fields
const TENSOR_RAW_DATA = 9;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const EXTERNAL = 1;
const GRAPH_INITIALIZER = 5;

export interface SplitOptions {
  /** files smaller than this are not split (default SPLIT_MIN_BYTES) */
  minBytes?: number;
  /** free bytes on the file's disk (tests); default statfs */
  freeBytes?: (folder: string) => number | undefined;
  log?: (line: string) => void;
}

/**
 * The split copy of `file` (its path), made now if it is not there yet; undefined where the file is small, keeps
 * no large inline weight, or cannot be split here (the reason is logged). Never throws.
 */
export function splitCopy(file: string, opts: SplitOptions = {}): string | undefined {
  const name = path.basename(file);
  let tmp: string | undefined;
  try {
    const st = statSync(file);
    if (!st.isFile() || st.size < (opts.minBytes ?? SPLIT_MIN_BYTES)) return undefined;
    const root = path.join(path.dirname(file), SPLIT_FOLDER);
    const final = path.join(root, `${name}.${st.size}-${Math.round(st.mtimeMs)}`);
    if (existsSync(path.join(final, name))) return path.join(final, name);
    const free = (opts.freeBytes ?? freeBytes)(path.dirname(file));
    if (free !== undefined && free < st.size + DISK_MARGIN_BYTES) {
      opts.log?.(`${name}: loaded as it is, not split into graph + weights (${mb(st.size)} needed beside it, ${mb(free)} free)`);
      return undefined;
    }
    mkdirSync(root, { recursive: true });
    tmp = path.join(root, `.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`);
    mkdirSync(tmp);
    const started = performance.now();
    const bytes = splitInto(file, path.join(tmp, name));
    if (bytes === 0) {
      opts.log?.(`${name}: holds no large inline weight; loaded as it is`);
      return undefined;
    }
    for (const old of readdirSync(root)) if (old.startsWith(`${name}.`)) rmSync(path.join(root, old), { recursive: true, force: true });
    try {
      renameSync(tmp, final);
      tmp = undefined;
    } catch (err) {
      if (!existsSync(path.join(final, name))) throw err; // else another process finished first: use its copy
    }
    opts.log?.(`${name}: split into graph + ${mb(bytes)} of aligned weights in ${Math.round(performance.now() - started)} ms (${path.relative(path.dirname(file), final)}; loads faster, made once)`);
    return path.join(final, name);
  } catch (err) {
    opts.log?.(`${name}: loaded as it is, not split into graph + weights (${err instanceof Error ? err.message : String(err)})`);
    return undefined;
  } finally {
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Writes `out` (the graph, every initializer over MAX_INLINE_BYTES as a reference) and `out`_data (those
 * weights); returns the weight bytes moved (0: none, and nothing written). Throws on a large field that is not an
 * initializer's raw_data (a big Constant, float_data), which would stay inline.
 */
export function splitInto(file: string, out: string): number {
  const r = new FileReader(file);
  let data: DataFile | undefined;
  try {
    data = new DataFile(`${out}_data`, path.basename(out) + '_data');
    const model = rewrite(r, 'model', 0, r.size, data, false);
    if (data.moved === 0) {
      data.close(true);
      return 0;
    }
    const fd = openSync(out, 'w');
    try {
      writeAll(fd, model);
    } finally {
      closeSync(fd);
    }
    data.close(false);
    return data.moved;
  } catch (err) {
    data?.close(true);
    throw err;
  } finally {
    r.close();
  }
}

/** The message of `kind` in [start, end) with its large initializer weights moved to `data`. */
function rewrite(r: FileReader, kind: Kind, start: number, end: number, data: DataFile, initializer: boolean): Buffer {
  const parts: Buffer[] = [];
  let external: { offset: number; length: number } | undefined;
  for (const f of fields(r, start, end)) {
    const child = f.wire === LEN ? CHILDREN[kind][f.field] : undefined;
    if (kind === 'tensor' && f.field === TENSOR_RAW_DATA && f.len > MAX_INLINE_BYTES && initializer) {
      external = { offset: data.append(r, f.body, f.len), length: f.len };
    } else if (child && !weightless(r, child, f.body, f.next)) {
      const body = rewrite(r, child, f.body, f.next, data, kind === 'graph' && f.field === GRAPH_INITIALIZER);
      parts.push(key(f.field, LEN), varint(body.length), body);
    } else if (f.len > MAX_INLINE_BYTES) {
      throw new Error(`a ${f.len}-byte field ${f.field} of a ${kind} at byte ${f.pos} is not an initializer's raw_data`);
    } else {
      parts.push(Buffer.from(r.bytes(f.pos, f.next)));
    }
  }
  if (external) {
    const entry = (k: string, v: string) => {
      const body = Buffer.concat([key(1, LEN), varint(Buffer.byteLength(k)), Buffer.from(k), key(2, LEN), varint(Buffer.byteLength(v)), Buffer.from(v)]);
      return [key(TENSOR_EXTERNAL_DATA, LEN), varint(body.length), body];
    };
    parts.push(...entry('location', data.name), ...entry('offset', String(external.offset)), ...entry('length', String(external.length)));
    parts.push(key(TENSOR_DATA_LOCATION, VARINT), varint(EXTERNAL));
  }
  return Buffer.concat(parts);
}

/** The data file: weights appended at aligned offsets, copied in chunks (never a whole weight in memory). */
class DataFile {
  moved = 0;
  private readonly fd: number;
  private end = 0;
  private readonly chunk = Buffer.alloc(COPY_CHUNK);

  constructor(
    private readonly file: string,
    readonly name: string,
  ) {
    this.fd = openSync(file, 'w');
  }

  append(r: FileReader, start: number, length: number): number {
    const offset = Math.ceil(this.end / ALIGN) * ALIGN;
    for (let done = 0; done < length; ) {
      const n = Math.min(COPY_CHUNK, length - done);
      r.readInto(this.chunk, n, start + done);
      writeAll(this.fd, this.chunk.subarray(0, n), offset + done);
      done += n;
    }
    this.end = offset + length;
    this.moved += length;
    return offset;
  }

  close(remove: boolean): void {
    closeSync(this.fd);
    if (remove) rmSync(this.file, { force: true });
  }
}

function writeAll(fd: number, buf: Uint8Array, position?: number): void {
  for (let done = 0; done < buf.length; ) {
    const n = writeSync(fd, buf, done, buf.length - done, position === undefined ? null : position + done);
    if (n <= 0) throw new Error('could not write');
    done += n;
  }
}

function key(field: number, wire: number): Buffer {
  return varint(field * 8 + wire);
}

/** protobuf varint of a non-negative integer up to 2^53 */
function varint(value: number): Buffer {
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 128) | 0x80);
    v = Math.floor(v / 128);
  }
  out.push(v);
  return Buffer.from(out);
}

function freeBytes(folder: string): number | undefined {
  try {
    const s = statfsSync(folder);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

function mb(bytes: number): string {
  return `${Math.round(bytes / 2 ** 20)} MiB`;
}
