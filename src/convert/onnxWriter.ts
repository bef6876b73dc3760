// Writes a graph whose weights do not fit in memory. Each initializer's bytes go to a data file the
// moment the builder makes them (`ExternalDataSink`); when the graph is done, `writeModel` either
// keeps that file as the model's external data (`<file>.onnx_data`: any graph past INLINE_LIMIT_BYTES), or
// streams a single-file model: the small graph protobuf first, then each initializer as a TensorProto
// whose raw_data is copied from the data file in chunks. Either way no more than one tensor (plus a
// copy buffer) is ever in memory.

import { closeSync, openSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import * as path from 'node:path';
import onnxProto from 'onnx-proto';
import type { GraphBuilder, TensorProto, TensorSink } from './onnxBuilder';

const { onnx } = onnxProto;

/**
 * Graphs with more weight bytes than this keep them in `<file>.onnx_data`. Protobuf refuses messages of 2 GiB,
 * but external data pays off long before: ONNX Runtime reads aligned external weights straight into its tensors,
 * where an inline file is parsed whole first (its weights held twice at the peak), and the engine can load an
 * external-data decoder with its LM head fed the last position only (src/engine/onnxView.ts). Measured on a
 * 207 M-parameter fp32 model (672 MB decoder, bench/README.md): load 4.4 s against 8-11 s, peak RSS 1.2 GB
 * against 1.2-1.5 GB, time to first token 0.85x. Small graphs (the built-in model) stay single files.
 */
export const INLINE_LIMIT_BYTES = 128 * 2 ** 20;
/** ORT maps external data page-wise; aligned tensors can be mapped without a copy */
const ALIGN = 4096;
const COPY_CHUNK = 16 * 2 ** 20;
/**
 * Smaller initializers stay inside the graph: shape inference must read Reshape/Slice constants, and
 * ORT refuses those from external data (onnx's own save uses a 1 KB threshold too).
 */
const EXTERNAL_MIN_BYTES = 1024;

interface Stored {
  tensor: TensorProto;
  offset: number;
  length: number;
}

export class ExternalDataSink implements TensorSink {
  private readonly fd: number;
  private offset = 0;
  private closed = false;
  readonly stored: Stored[] = [];

  /** `file`: where the bytes go now; `location`: the file name the model will reference (relative to it). */
  constructor(readonly file: string, readonly location: string) {
    this.fd = openSync(file, 'w');
  }

  get bytes(): number {
    return this.offset;
  }

  add(tensor: TensorProto, data: Uint8Array): TensorProto {
    if (data.byteLength < EXTERNAL_MIN_BYTES) {
      tensor.rawData = data.slice();
      return tensor;
    }
    const pad = (ALIGN - (this.offset % ALIGN)) % ALIGN;
    if (pad > 0 && data.byteLength >= ALIGN) {
      writeSync(this.fd, new Uint8Array(pad));
      this.offset += pad;
    }
    for (let done = 0; done < data.byteLength; ) done += writeSync(this.fd, data, done, data.byteLength - done);
    tensor.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    tensor.externalData = [
      { key: 'location', value: this.location },
      { key: 'offset', value: String(this.offset) },
      { key: 'length', value: String(data.byteLength) },
    ];
    this.stored.push({ tensor, offset: this.offset, length: data.byteLength });
    this.offset += data.byteLength;
    return tensor;
  }

  /** Idempotent: closing a descriptor twice could close another file that reused its number. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    closeSync(this.fd);
  }
}

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return out;
}

// field tags (field number << 3 | wire type 2, length-delimited)
const MODEL_GRAPH = (7 << 3) | 2;
const GRAPH_INITIALIZER = (5 << 3) | 2;
const TENSOR_RAW_DATA = (9 << 3) | 2;

function writeAll(fd: number, bytes: Uint8Array): void {
  for (let done = 0; done < bytes.byteLength; ) done += writeSync(fd, bytes, done, bytes.byteLength - done);
}

/** Streams a single-file model: the graph without initializers, then each initializer with its raw bytes from the sink's file. */
function writeInline(builder: GraphBuilder, sink: ExternalDataSink, out: string): void {
  const model = builder.modelWithoutInitializers();
  const graph = model.graph!;
  model.graph = null;
  const head = onnx.ModelProto.encode(model).finish();
  const graphHead = onnx.GraphProto.encode(graph).finish();
  const outside = new Map(sink.stored.map((s) => [s.tensor, s]));
  const entries = builder.initializers.map((tensor) => {
    const s = outside.get(tensor);
    if (!s) {
      const whole = onnx.TensorProto.encode(tensor).finish(); // small, kept inline by the sink
      return { s: { offset: 0, length: 0 }, prefix: Uint8Array.from([GRAPH_INITIALIZER, ...varint(whole.length), ...whole]) };
    }
    const stub = onnx.TensorProto.create({ name: s.tensor.name, dataType: s.tensor.dataType, dims: s.tensor.dims });
    const fields = onnx.TensorProto.encode(stub).finish();
    const messageLength = fields.length + 1 + varint(s.length).length + s.length;
    return { s, prefix: Uint8Array.from([GRAPH_INITIALIZER, ...varint(messageLength), ...fields, TENSOR_RAW_DATA, ...varint(s.length)]) };
  });
  const graphLength = graphHead.length + entries.reduce((n, e) => n + e.prefix.length + e.s.length, 0);
  const fd = openSync(out, 'w');
  const data = openSync(sink.file, 'r');
  try {
    writeAll(fd, head);
    writeAll(fd, Uint8Array.from([MODEL_GRAPH, ...varint(graphLength)]));
    writeAll(fd, graphHead);
    const chunk = Buffer.allocUnsafe(Math.min(COPY_CHUNK, Math.max(1, ...sink.stored.map((s) => s.length))));
    for (const { s, prefix } of entries) {
      writeAll(fd, prefix);
      for (let done = 0; done < s.length; ) {
        const n = readSync(data, chunk, 0, Math.min(chunk.length, s.length - done), s.offset + done);
        if (n === 0) throw new Error(`${sink.file} ended early`);
        writeAll(fd, chunk.subarray(0, n));
        done += n;
      }
    }
  } finally {
    closeSync(data);
    closeSync(fd);
  }
}

export interface WrittenModel {
  /** the .onnx file and, when the weights stayed outside, its data file */
  files: string[];
  external: boolean;
}

/**
 * Finishes a graph built over `sink` (closed here): `<final>.onnx` alone when its weights fit under
 * `inlineLimit`, else `<final>.onnx` + `<final>.onnx_data`. Both are written under `.partial` names and
 * renamed last, so a file with the final name is always complete.
 */
export function writeModel(builder: GraphBuilder, sink: ExternalDataSink, finalPath: string, inlineLimit = INLINE_LIMIT_BYTES): WrittenModel {
  sink.close();
  const partial = `${finalPath}.partial`;
  if (sink.bytes <= inlineLimit) {
    writeInline(builder, sink, partial);
    rmSync(sink.file, { force: true });
    renameSync(partial, finalPath);
    return { files: [finalPath], external: false };
  }
  const dataPath = path.join(path.dirname(finalPath), sink.location);
  writeAll1(partial, builder.encode());
  renameSync(sink.file, dataPath);
  renameSync(partial, finalPath);
  return { files: [finalPath, dataPath], external: true };
}

function writeAll1(file: string, bytes: Uint8Array): void {
  const fd = openSync(file, 'w');
  try {
    writeAll(fd, bytes);
  } finally {
    closeSync(fd);
  }
}
