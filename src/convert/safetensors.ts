// Streaming reader of safetensors checkpoints, single file or sharded (model.safetensors.index.json).
// A file is an 8-byte little-endian header length, a JSON header (name -> dtype, shape, data_offsets
// relative to the end of the header), then raw little-endian tensor data. Only the header is kept in
// memory; each tensor is read with one positioned read when asked for, so a 14 GB checkpoint costs
// the RAM of its largest tensor, never its size.

import { closeSync, existsSync, fstatSync, openSync, readSync } from 'node:fs';
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { ConvertError } from '../core';
import { bf16ToF32, f16ToF32 } from './floats';

export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';
const BYTES: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

/** The safetensors header length field is a u64; anything past this is a corrupt or hostile file. */
const MAX_HEADER_BYTES = 100 * 2 ** 20;

export interface TensorInfo {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  /** the shard holding it */
  file: string;
  /** absolute byte offset of the first value in `file` */
  offset: number;
  byteLength: number;
}

function readExactly(fd: number, length: number, position: number, file: string): Buffer {
  const buf = Buffer.allocUnsafe(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, length - done, position + done);
    if (n === 0) throw new ConvertError(path.basename(file), `truncated: wanted ${length} bytes at offset ${position}, file ends after ${done}`);
    done += n;
  }
  return buf;
}

/** Parses one file's header: every tensor's dtype, shape and absolute offsets, checked against the file size. */
export function readSafetensorsHeader(file: string): TensorInfo[] {
  const name = path.basename(file);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch (err) {
    throw new ConvertError(name, `cannot open: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = fstatSync(fd).size;
    if (size < 8) throw new ConvertError(name, 'not a safetensors file (shorter than 8 bytes)');
    const headerLength = Number(readExactly(fd, 8, 0, file).readBigUInt64LE(0));
    if (headerLength > MAX_HEADER_BYTES || 8 + headerLength > size) {
      throw new ConvertError(name, `not a safetensors file (header length ${headerLength} with file size ${size})`);
    }
    let header: Record<string, unknown>;
    try {
      header = JSON.parse(readExactly(fd, headerLength, 8, file).toString('utf8'));
    } catch (err) {
      throw new ConvertError(name, `header is not JSON: ${(err as Error).message}`, { cause: err });
    }
    const dataStart = 8 + headerLength;
    const out: TensorInfo[] = [];
    for (const [tensor, raw] of Object.entries(header)) {
      if (tensor === '__metadata__') continue;
      const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const dtype = entry.dtype as SafetensorsDtype;
      if (!(typeof dtype === 'string' && dtype in BYTES)) {
        throw new ConvertError(tensor, `dtype ${String(entry.dtype)} in ${name} is not supported (F32, F16, BF16 are)`);
      }
      const shape = entry.shape;
      const offsets = entry.data_offsets;
      if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d) && d >= 0) || !Array.isArray(offsets) || offsets.length !== 2) {
        throw new ConvertError(tensor, `malformed header entry in ${name}`);
      }
      const [begin, end] = offsets as number[];
      const count = (shape as number[]).reduce((a, b) => a * b, 1);
      if (end - begin !== count * BYTES[dtype] || begin < 0 || dataStart + end > size) {
        throw new ConvertError(tensor, `data_offsets [${begin}, ${end}] do not fit shape [${shape.join(', ')}] ${dtype} in ${name} (${size} bytes)`);
      }
      out.push({ name: tensor, dtype, shape: shape as number[], file, offset: dataStart + begin, byteLength: end - begin });
    }
    return out;
  } finally {
    closeSync(fd);
  }
}

/** The shards of a checkpoint folder: from model.safetensors.index.json when present, else model.safetensors. */
export function checkpointShards(dir: string): string[] {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (existsSync(index)) {
    let map: unknown;
    try {
      map = (JSON.parse(readFileSync(index, 'utf8')) as { weight_map?: unknown }).weight_map;
    } catch (err) {
      throw new ConvertError('model.safetensors.index.json', `not JSON: ${(err as Error).message}`, { cause: err });
    }
    if (!map || typeof map !== 'object') throw new ConvertError('model.safetensors.index.json', 'has no weight_map');
    const shards = [...new Set(Object.values(map as Record<string, unknown>))];
    for (const s of shards) {
      // shard names come from a downloaded file: plain names in the folder only
      if (typeof s !== 'string' || s !== path.basename(s) || !s.endsWith('.safetensors')) {
        throw new ConvertError('model.safetensors.index.json', `weight_map names ${JSON.stringify(s)}, not a .safetensors file in the folder`);
      }
    }
    return (shards as string[]).sort().map((s) => path.join(dir, s));
  }
  const single = path.join(dir, 'model.safetensors');
  if (existsSync(single)) return [single];
  throw new ConvertError(path.basename(dir) || dir, 'no model.safetensors or model.safetensors.index.json (expected a llava-hf checkpoint folder)');
}

/** Every tensor of a (possibly sharded) checkpoint by name, and a reader that loads one tensor at a time. */
export class SafetensorsCheckpoint {
  readonly tensors = new Map<string, TensorInfo>();
  private readonly fds = new Map<string, number>();

  constructor(readonly dir: string) {
    for (const shard of checkpointShards(dir)) {
      for (const t of readSafetensorsHeader(shard)) {
        const other = this.tensors.get(t.name);
        if (other) throw new ConvertError(t.name, `is in both ${path.basename(other.file)} and ${path.basename(shard)}`);
        this.tensors.set(t.name, t);
      }
    }
  }

  /** Total bytes of tensor data (what the conversion reads once per part that uses every tensor). */
  get dataBytes(): number {
    let n = 0;
    for (const t of this.tensors.values()) n += t.byteLength;
    return n;
  }

  info(name: string): TensorInfo {
    const t = this.tensors.get(name);
    if (!t) throw new ConvertError(name, `missing from the checkpoint in ${this.dir}`);
    return t;
  }

  /** The tensor's raw bytes, as stored. */
  readRaw(name: string): Buffer {
    const t = this.info(name);
    let fd = this.fds.get(t.file);
    if (fd === undefined) {
      fd = openSync(t.file, 'r');
      this.fds.set(t.file, fd);
    }
    return readExactly(fd, t.byteLength, t.offset, t.file);
  }

  /** The tensor as float32 values, row-major in its stored shape. */
  readF32(name: string): Float32Array {
    const t = this.info(name);
    const raw = this.readRaw(name);
    // Buffer.allocUnsafe may hand out a pooled, unaligned slice: copy into an aligned array for the typed views
    const aligned = raw.byteOffset % 4 === 0 ? raw : Buffer.from(raw);
    if (t.dtype === 'F32') return new Float32Array(aligned.buffer, aligned.byteOffset, t.byteLength / 4);
    const bits = new Uint16Array(aligned.buffer, aligned.byteOffset, t.byteLength / 2);
    return t.dtype === 'BF16' ? bf16ToF32(bits) : f16ToF32(bits);
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
