// Token embeddings read row by row from the embed_tokens file, instead of an ONNX Runtime session holding the
// whole table. An embed_tokens graph is a lookup: Gather(table, input_ids), in the exports we read optionally
// followed by a Cast to float (an fp16 table) or a per-tensor DequantizeLinear (an 8-bit table). A prompt looks
// up a few dozen rows and each generated token one, so the table need not be in memory: each row is one
// positioned read of the file (the operating system's page cache keeps the hot rows), and the process's resident
// memory no longer carries it. That table is the largest weight of a small model: 131 MB of bench-207m's 230 MB
// in q4, 621 MB for a 0.5B Qwen's 151,646 x 1,024 in fp32.
//
// Any other graph (a block-quantized Gather, a scaled lookup, an unknown op) is left to a session.
// The values are the session's bit for bit: a row is copied (fp32), widened exactly (fp16), or computed as
// (q - zero point) x scale in double and rounded once to f32, which is what DequantizeLinear's single float
// multiply gives (the product of two floats is exact in a double).

import { closeSync, openSync, read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { fromHalf } from './half';
import { fixedDim, requireInput, requireOutput } from './onnx';
import { onnx } from './onnxProto';
import { FileReader, fields, LEN, MAX_INLINE_BYTES } from './onnxView';

type TensorProto = import('onnx-proto').onnx.ITensorProto;
type NodeProto = import('onnx-proto').onnx.INodeProto;

/** ids -> embeddings; a session's or the file's rows */
export interface Embedder {
  /** the embedding width, where the graph fixes it */
  readonly hidden: number | undefined;
  /** ids [B, T] -> embeddings [B, T, hidden] f32 */
  embed(ids: ArrayLike<number>, batch: number): Promise<Float32Array>;
  close(): void;
}

const readAsync = promisify(read);

const DT = { FLOAT: 1, UINT8: 2, INT8: 3, FLOAT16: 10 } as const;
const BYTES: Record<number, number> = { [DT.FLOAT]: 4, [DT.UINT8]: 1, [DT.INT8]: 1, [DT.FLOAT16]: 2 };

/** where the table's rows are, and how a row becomes f32 */
export interface RowTable {
  file: string;
  /** byte offset of row 0 */
  offset: number;
  rows: number;
  cols: number;
  dataType: number;
  /** DequantizeLinear's per-tensor scale and zero point (8-bit tables) */
  scale?: number;
  zeroPoint?: number;
}

export class EmbeddingRows implements Embedder {
  readonly hidden: number;
  private fd: number | undefined;
  private readonly rowBytes: number;

  private constructor(readonly table: RowTable) {
    this.hidden = table.cols;
    this.rowBytes = table.cols * BYTES[table.dataType];
    this.fd = openSync(table.file, 'r');
  }

  /** The rows of `file`'s table, or undefined where its graph is not a plain lookup (use a session). */
  static open(file: string): EmbeddingRows | undefined {
    const table = rowTable(file);
    return table && new EmbeddingRows(table);
  }

  async embed(ids: ArrayLike<number>, _batch: number): Promise<Float32Array> {
    // one turn of the event loop between the decoder's runs, as a session's run gives: with none (an async function
    // that never waits) decode on bench-207m q4 fell to 0.77x in paired runs; with it, 1.00x (5 paired rounds)
    await new Promise((resolve) => setImmediate(resolve));
    const fd = this.fd;
    if (fd === undefined) throw new Error('the embedding table is closed');
    const { rows, cols, dataType, offset, scale = 1, zeroPoint = 0 } = this.table;
    const out = new Float32Array(ids.length * cols);
    const b = Buffer.alloc(this.rowBytes); // its own ArrayBuffer: aligned for the f32 / f16 views below
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (!Number.isInteger(id) || id < 0 || id >= rows) throw new RangeError(`token id ${id} is outside the embedding table (${rows} rows)`);
      for (let done = 0; done < this.rowBytes; ) {
        const bytesRead = readSync(fd, b, done, this.rowBytes - done, offset + id * this.rowBytes + done);
        if (bytesRead <= 0) throw new Error(`${path.basename(this.table.file)}: could not read the row of token ${id}`);
        done += bytesRead;
      }
      const dst = out.subarray(i * cols, (i + 1) * cols);
      if (dataType === DT.FLOAT) dst.set(new Float32Array(b.buffer, b.byteOffset, cols));
      else if (dataType === DT.FLOAT16) dst.set(fromHalf(new Uint16Array(b.buffer, b.byteOffset, cols)));
      else if (dataType === DT.UINT8) for (let c = 0; c < cols; c++) dst[c] = (b[c] - zeroPoint) * scale;
      else for (let c = 0; c < cols; c++) dst[c] = (b.readInt8(c) - zeroPoint) * scale;
    }
    return out;
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }
}

/**
 * The table of an embed_tokens graph that is a plain lookup: Gather(table, input_ids) -> inputs_embeds, or that
 * Gather followed by Cast(to float) or a per-tensor DequantizeLinear; fp32, fp16, uint8 or int8 rows, inline or in
 * external data. Undefined for anything else.
 */
export function rowTable(file: string): RowTable | undefined {
  const r = new FileReader(file);
  try {
    const graph = [...fields(r, 0, r.size)].find((f) => f.field === 7 && f.wire === LEN);
    if (!graph) return undefined;
    const nodes: NodeProto[] = [];
    const inits = new Map<string, { tensor: TensorProto; raw?: { start: number; length: number } }>();
    for (const f of fields(r, graph.body, graph.next)) {
      if (f.wire !== LEN) continue;
      if (f.field === 1) {
        if (f.len > MAX_INLINE_BYTES) return undefined; // a node holding a large constant: not a plain lookup
        nodes.push(onnx().NodeProto.decode(r.bytes(f.body, f.next)));
      } else if (f.field === 5) {
        const t = initializer(r, f.body, f.next);
        inits.set(t.tensor.name ?? '', t);
      }
    }
    return lookup(file, nodes, inits);
  } catch {
    return undefined; // not a protobuf we can read: let ONNX Runtime say what is wrong with it
  } finally {
    r.close();
  }
}

/** a TensorProto decoded without its raw_data, and where that raw_data lies in the file */
function initializer(r: FileReader, start: number, end: number): { tensor: TensorProto; raw?: { start: number; length: number } } {
  const kept: Uint8Array[] = [];
  let raw: { start: number; length: number } | undefined;
  for (const f of fields(r, start, end)) {
    if (f.wire === LEN && f.field === 9) raw = { start: f.body, length: f.len };
    if (f.wire === LEN && f.len > MAX_INLINE_BYTES) {
      if (f.field !== 9) return { tensor: {} }; // a large float_data or the like: not a table read here
    } else {
      kept.push(r.bytes(f.pos, f.next));
    }
  }
  return { tensor: onnx().TensorProto.decode(Buffer.concat(kept)), raw };
}

function lookup(file: string, nodes: NodeProto[], inits: Map<string, { tensor: TensorProto; raw?: { start: number; length: number } }>): RowTable | undefined {
  const gather = nodes.find((n) => n.opType === 'Gather');
  if (!gather || (gather.domain ?? '') !== '' || gather.input?.[1] !== 'input_ids' || !gather.output?.[0]) return undefined;
  const axis = gather.attribute?.find((a) => a.name === 'axis');
  if (axis && Number(axis.i ?? 0) !== 0) return undefined;
  const table = inits.get(gather.input[0] ?? '');
  const dims = table?.tensor.dims?.map(Number);
  const dataType = table?.tensor.dataType ?? 0;
  if (!table || dims?.length !== 2 || !BYTES[dataType]) return undefined;
  const [rows, cols] = dims;
  const where = tableBytes(file, table.tensor, table.raw);
  if (!where || where.length !== rows * cols * BYTES[dataType]) return undefined;
  const out: RowTable = { file: where.file, offset: where.offset, rows, cols, dataType };

  const rest = nodes.filter((n) => n !== gather);
  if (rest.length === 0) return gather.output[0] === 'inputs_embeds' ? out : undefined;
  if (rest.length !== 1 || (rest[0].domain ?? '') !== '' || rest[0].input?.[0] !== gather.output[0] || rest[0].output?.[0] !== 'inputs_embeds') return undefined;
  const next = rest[0];
  if (next.opType === 'Cast') {
    const to = next.attribute?.find((a) => a.name === 'to');
    return dataType === DT.FLOAT16 && Number(to?.i) === DT.FLOAT ? out : undefined;
  }
  if (next.opType === 'DequantizeLinear' && (dataType === DT.UINT8 || dataType === DT.INT8)) {
    const scale = scalar(inits.get(next.input?.[1] ?? '')?.tensor, DT.FLOAT);
    const zp = next.input?.[2] ? scalar(inits.get(next.input[2])?.tensor, dataType) : 0;
    if (scale === undefined || zp === undefined || next.attribute?.some((a) => a.name === 'axis' && Number(a.i) !== 1 && Number(a.i) !== -1)) return undefined;
    return { ...out, scale, zeroPoint: zp };
  }
  return undefined;
}

/** the file and offset of a table's bytes: its raw_data, or its external data beside the graph */
function tableBytes(file: string, t: TensorProto, raw: { start: number; length: number } | undefined): { file: string; offset: number; length: number } | undefined {
  if (raw) return { file, offset: raw.start, length: raw.length };
  if (t.dataLocation !== onnx().TensorProto.DataLocation.EXTERNAL) return undefined;
  const entry = (k: string) => t.externalData?.find((e) => e.key === k)?.value;
  const location = entry('location');
  if (!location || path.isAbsolute(location) || location.split(/[\\/]/).includes('..')) return undefined;
  const offset = Number(entry('offset') ?? 0);
  const length = Number(entry('length'));
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) return undefined;
  return { file: path.join(path.dirname(file), location), offset, length };
}

/** a one-element initializer of `dataType` as a number */
function scalar(t: TensorProto | undefined, dataType: number): number | undefined {
  if (!t || t.dataType !== dataType || (t.dims ?? []).some((d) => Number(d) !== 1)) return undefined;
  const raw = t.rawData;
  if (raw && raw.length === BYTES[dataType]) {
    const b = Buffer.from(raw);
    return dataType === DT.FLOAT ? b.readFloatLE(0) : dataType === DT.UINT8 ? b.readUInt8(0) : b.readInt8(0);
  }
  if (dataType === DT.FLOAT && t.floatData?.length === 1) return t.floatData[0];
  if (dataType !== DT.FLOAT && t.int32Data?.length === 1) return t.int32Data[0];
  return undefined;
}

/** An embed_tokens session as an Embedder (any graph ONNX Runtime runs). */
export class SessionEmbedder implements Embedder {
  readonly hidden: number | undefined;

  constructor(
    private readonly session: ort.InferenceSession,
    file: string,
  ) {
    requireInput(session, file, 'input_ids');
    this.hidden = fixedDim(requireOutput(session, file, 'inputs_embeds'), 2);
  }

  async embed(ids: ArrayLike<number>, batch: number): Promise<Float32Array> {
    const T = ids.length / batch;
    const idData = new BigInt64Array(ids.length);
    for (let i = 0; i < ids.length; i++) idData[i] = BigInt(ids[i]);
    const out = (await this.session.run({ input_ids: new ort.Tensor('int64', idData, [batch, T]) })).inputs_embeds;
    return out.type === 'float16' ? fromHalf(out.data as Uint16Array) : (out.data as Float32Array);
  }

  close(): void {
    // the session is released with the model's others
  }
}
