// The graph of an ONNX file whose weights live in external data (`<file>.onnx_data`: every graph over 2 GB,
// the converter's 7B output, many Hub exports), read field by field (protobuf wire format) without touching
// the weights, so that the engine can edit it before ONNX Runtime loads it from memory, the weights still read
// from the data file (session option `session.model_external_initializers_file_folder_path` = the file's
// folder). The edits (decoderEdits): the decoder's LM head fed the last position only (lastPositionLogits), and
// the keys and values of a run's own positions returned beside `present.*` (newKeyValueOutputs), so that the
// engine can keep a preallocated cache instead of fetching the whole concatenated one every step.
//
// A file that keeps its weights inline is not edited (graphOnly returns undefined): re-serialising it would
// hold the weights twice, and referencing them in place (external data pointing into the .onnx itself, which
// loads in ONNX Runtime and cut the peak RSS of a 672 MB decoder from 1.2-1.5 GB to 0.9) turned out slower:
// ONNX Runtime 1.30 does not prepack weights read from unaligned offsets (a protobuf's raw_data lies anywhere),
// and without MLAS's prepacked copies a 602-token prefill took 1.2x the CPU time and decode 1.2-1.9x
// (bench/README.md). Data files with aligned offsets, as exporters write them, prepack as usual (measured: the
// same prefill CPU time as the inline file).

import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import * as path from 'node:path';
import { NEW_KV_PREFIX } from '../core';
import { onnx } from './onnxProto';

/** raw_data shorter than this may stay inline (shapes, scalars, small constants) */
export const MAX_INLINE_BYTES = 64 * 1024;

// protobuf wire types
export const VARINT = 0;
export const I64 = 1;
export const LEN = 2;
export const I32 = 5;

/** The message types that can hold tensors, and which of their fields lead to one. */
export type Kind = 'model' | 'graph' | 'node' | 'attribute' | 'tensor' | 'sparse' | 'function';
export const CHILDREN: Record<Kind, Partial<Record<number, Kind>>> = {
  model: { 7: 'graph', 25: 'function' }, // ModelProto.graph, functions
  graph: { 1: 'node', 5: 'tensor', 15: 'sparse' }, // GraphProto.node, initializer, sparse_initializer
  function: { 7: 'node' }, // FunctionProto.node
  node: { 5: 'attribute' }, // NodeProto.attribute
  attribute: { 5: 'tensor', 6: 'graph', 10: 'tensor', 11: 'graph' }, // AttributeProto.t, g, tensors, graphs
  sparse: { 1: 'tensor', 2: 'tensor' }, // SparseTensorProto.values, indices
  tensor: {},
};

export interface GraphOnly {
  /** the file's ModelProto bytes (its weights are references to external data) */
  model: Uint8Array;
  /** the folder ONNX Runtime resolves those references against (the file's own) */
  folder: string;
}

/**
 * `file`'s ModelProto, read without its weights, when every tensor of more than MAX_INLINE_BYTES is external
 * data; undefined as soon as one is inline (the scan stops there). Throws on a file that is not a well-formed
 * protobuf.
 */
export function graphOnly(file: string): GraphOnly | undefined {
  const reader = new FileReader(file);
  try {
    if (!weightless(reader, 'model', 0, reader.size)) return undefined;
    return { model: reader.bytes(0, reader.size), folder: path.dirname(file) };
  } finally {
    reader.close();
  }
}

/** One field of a protobuf message: its number, wire type, where it starts, and where its value lies. */
export interface Field {
  field: number;
  wire: number;
  /** the tag's first byte */
  pos: number;
  /** a length-delimited field's first value byte (else the tag's end) */
  body: number;
  /** a length-delimited field's length (else 0) */
  len: number;
  /** the next field's first byte */
  next: number;
}

/** The fields of the message in [start, end) of the file, in order; throws where they do not parse. */
export function* fields(r: FileReader, start: number, end: number): Generator<Field> {
  let pos = start;
  while (pos < end) {
    const [tag, afterTag] = r.varint(pos);
    const field = tag >>> 3;
    const wire = tag & 7;
    if (field === 0) throw new Error(`field 0 at byte ${pos}`);
    let body = afterTag;
    let len = 0;
    let next: number;
    if (wire === LEN) {
      [len, body] = r.varint(afterTag);
      next = body + len;
      if (next > end) throw new Error(`a field at byte ${pos} runs past its message`);
    } else {
      next = wire === VARINT ? r.varint(afterTag)[1] : wire === I64 ? afterTag + 8 : wire === I32 ? afterTag + 4 : -1;
      if (next < 0) throw new Error(`wire type ${wire} at byte ${pos}`);
    }
    yield { field, wire, pos, body, len, next };
    pos = next;
  }
  if (pos !== end) throw new Error(`a message at byte ${start} does not end on a field boundary`);
}

/** false if the message of `kind` in [start, end) of the file holds an inline weight (or any field as large) */
export function weightless(r: FileReader, kind: Kind, start: number, end: number): boolean {
  for (const f of fields(r, start, end)) {
    if (f.wire !== LEN) continue;
    const child = CHILDREN[kind][f.field];
    if (f.len > MAX_INLINE_BYTES && (kind === 'tensor' || !child)) return false; // weights, or something as large
    if (child && !weightless(r, child, f.body, f.next)) return false;
  }
  return true;
}

/** Positional reads through a small window, so that skipping a field costs nothing. */
export class FileReader {
  readonly size: number;
  private readonly fd: number;
  private window = Buffer.alloc(0);
  private windowStart = 0;

  constructor(file: string) {
    this.fd = openSync(file, 'r');
    this.size = fstatSync(this.fd).size;
  }

  close(): void {
    closeSync(this.fd);
  }

  /** [value, position after it]; values up to 2^53 */
  varint(pos: number): [number, number] {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      const b = this.byte(pos + i);
      value += (b & 0x7f) * scale;
      if (b < 0x80) return [value, pos + i + 1];
      scale *= 128;
    }
    throw new Error(`a varint at byte ${pos} is longer than 10 bytes`);
  }

  bytes(start: number, end: number): Uint8Array {
    const buf = Buffer.alloc(end - start);
    this.readInto(buf, buf.length, start);
    return buf;
  }

  /** the `length` bytes from `start` into the front of `buf` */
  readInto(buf: Uint8Array, length: number, start: number): void {
    if (start + length > this.size) throw new Error(`the file ends at byte ${this.size}, before ${start + length}`);
    for (let done = 0; done < length; ) {
      const n = readSync(this.fd, buf, done, length - done, start + done);
      if (n <= 0) throw new Error(`could not read byte ${start + done}`);
      done += n;
    }
  }

  private byte(pos: number): number {
    if (pos < this.windowStart || pos >= this.windowStart + this.window.length) {
      if (pos >= this.size) throw new Error(`the file ends at byte ${this.size}, inside a field`);
      this.window = Buffer.alloc(Math.min(64 * 1024, this.size - pos));
      this.windowStart = pos;
      readSync(this.fd, this.window, 0, this.window.length, pos);
    }
    return this.window[pos - this.windowStart];
  }
}

type Graph = import('onnx-proto').onnx.IGraphProto;
type ValueInfo = import('onnx-proto').onnx.IValueInfoProto;
type Node = import('onnx-proto').onnx.INodeProto;

/**
 * The decoder `model` (ModelProto bytes, best a weightless one) changed to compute its `logits` output for the
 * last position only: a Slice of the LM head's input to its last row on the position axis, so the head's
 * [T, hidden] x [hidden, vocab] multiply of a T-token prefill becomes [1, hidden] x [hidden, vocab] (on a
 * LLaMA-shaped 207 M model with a 602-token prompt, 39 of ~200 GFLOP) and ONNX Runtime no longer allocates a
 * [B, T, vocab] logits buffer. The row is the same computation (a one-row multiply may round in another order). The output's position axis becomes 1, which
 * tells the engine to run a prefill whole (LanguageModel.lastLogitsOnly). Undefined where the head is not
 * recognised: a MatMul, MatMulNBits or MatMulBnb4 by a constant making `logits` (through Cast / Identity nodes), directly or in both branches of an If
 * (Optimum's merged decoders).
 */
export function lastPositionLogits(model: Uint8Array): Uint8Array | undefined {
  const proto = onnx().ModelProto.decode(model);
  return sliceLastPosition(proto) ? onnx().ModelProto.encode(proto).finish() : undefined;
}

/** lastPositionLogits on a decoded model; false (and the model possibly half edited) where the head is not recognised */
function sliceLastPosition(proto: import('onnx-proto').onnx.IModelProto): boolean {
  const graph = proto.graph;
  const output = graph?.output?.find((o) => o.name === 'logits');
  if (!graph || !output || !sliceHeadInput(graph, 'logits', 0, new Set())) return false;
  setPositionAxis(output);
  return true;
}

/**
 * The decoder `model` changed to also return, for every layer, the keys and values of the run's own T positions
 * as `<NEW_KV_PREFIX>{i}.key` / `.value` [B, kv_heads, T, head_dim]: the second input of the Concat that makes
 * `present.{i}.*` from `past_key_values.{i}.*` (on the position axis), which is how Hub exports grow the cache.
 * With them the engine keeps its own preallocated cache, feeds all of it with the unused positions masked, and
 * appends the new positions, where it would otherwise fetch `present.*` (onnxruntime-node copies every fetched
 * output into a new buffer: the whole cache a step, 14.7 MB at 600 positions of a 12-layer LLaMA with 4 KV heads,
 * and garbage for V8 to collect). Undefined unless every `present.*` output is made that way.
 */
export function newKeyValueOutputs(model: Uint8Array): Uint8Array | undefined {
  const proto = onnx().ModelProto.decode(model);
  return addNewKeyValueOutputs(proto) ? onnx().ModelProto.encode(proto).finish() : undefined;
}

/** newKeyValueOutputs on a decoded model; false (the model untouched) where it does not apply */
function addNewKeyValueOutputs(proto: import('onnx-proto').onnx.IModelProto): boolean {
  const graph = proto.graph;
  if (!graph?.output || !graph.node) return false;
  const nodes = graph.node;
  const presents = graph.output.filter((o) => /^present\.\d+\.(key|value)$/.test(o.name ?? ''));
  if (!presents.length) return false;
  const names = new Set([...graph.output.map((o) => o.name), ...nodes.flatMap((n) => n.output ?? [])]);
  const producerOf = (value: string) => nodes.find((n) => n.output?.includes(value));
  const attr = (n: Node | undefined, name: string) => n?.attribute?.find((a) => a.name === name)?.i;
  const plan: Array<{ present: ValueInfo; fresh: string; name: string; castTo?: number }> = [];
  for (const present of presents) {
    const name = present.name!.replace(/^present\./, NEW_KV_PREFIX);
    const past = present.name!.replace(/^present\./, 'past_key_values.');
    let producer = producerOf(present.name!);
    // a graph that computes in float32 between float16 inputs and outputs: Cast(Concat(Cast(past), new))
    let castTo: number | undefined;
    if (producer?.opType === 'Cast' && !producer.domain && producer.input?.[0]) {
      castTo = Number(attr(producer, 'to'));
      producer = producerOf(producer.input[0]);
    }
    const first = producer?.input?.[0];
    const firstIsPast = first === past || (producerOf(first ?? '')?.opType === 'Cast' && producerOf(first!)?.input?.[0] === past);
    const axis = Number(attr(producer, 'axis') ?? NaN);
    const dims = present.type?.tensorType?.shape?.dim;
    const ok = producer?.opType === 'Concat' && !producer.domain && producer.input?.length === 2 && firstIsPast && (axis === 2 || axis === -2) && (!dims || dims.length === 4) && !names.has(name);
    if (!ok) return false;
    plan.push({ present, fresh: producer!.input![1], name, ...(castTo !== undefined ? { castTo } : {}) });
  }
  for (const { present, fresh, name, castTo } of plan) {
    const cast = castTo !== undefined ? { opType: 'Cast', attribute: [{ name: 'to', type: onnx().AttributeProto.AttributeType.INT, i: castTo }] } : { opType: 'Identity' };
    nodes.push(onnx().NodeProto.create({ ...cast, name: `llava_${name}`, input: [fresh], output: [name] }));
    const info = onnx().ValueInfoProto.decode(onnx().ValueInfoProto.encode(present).finish()); // a deep copy
    info.name = name;
    const dims = info.type?.tensorType?.shape?.dim;
    if (dims?.length === 4) dims[2] = onnx().TensorShapeProto.Dimension.create({ dimParam: 'sequence_length' });
    graph.output.push(info);
  }
  return true;
}

/**
 * Every edit of a decoder that applies (lastPositionLogits, newKeyValueOutputs), made in one pass over the
 * graph; undefined when none does.
 */
export function decoderEdits(model: Uint8Array): { model: Uint8Array; lastPosition: boolean; newKeyValues: boolean } | undefined {
  let proto = onnx().ModelProto.decode(model);
  const lastPosition = sliceLastPosition(proto);
  if (!lastPosition) proto = onnx().ModelProto.decode(model); // a head not recognised may be half edited
  const newKeyValues = addNewKeyValueOutputs(proto);
  if (!lastPosition && !newKeyValues) return undefined;
  return { model: onnx().ModelProto.encode(proto).finish(), lastPosition, newKeyValues };
}

/** true when the head making `name` in `graph` now reads its input's last position */
function sliceHeadInput(graph: Graph, name: string, depth: number, outerConstants: ReadonlySet<string>): boolean {
  const nodes = graph.node ?? [];
  // a branch reads the initializers of the graphs around it (Optimum's merged decoders keep them at the top)
  const constants = new Set([...outerConstants, ...(graph.initializer ?? []).map((t) => t.name!)]);
  const producerOf = (value: string) => nodes.find((n) => n.output?.includes(value));
  let value = name;
  let producer = producerOf(value);
  while ((producer?.opType === 'Cast' || producer?.opType === 'Identity') && producer.input?.[0]) {
    value = producer.input[0];
    producer = producerOf(value);
  }
  if (!producer) return false;
  if (producer.opType === 'If' && depth < 2) {
    const k = producer.output!.indexOf(value);
    const branches = (producer.attribute ?? []).filter((a) => a.name === 'then_branch' || a.name === 'else_branch').map((a) => a.g);
    if (branches.length !== 2 || branches.some((g) => !g?.output?.[k]?.name)) return false;
    for (const g of branches) {
      if (!sliceHeadInput(g!, g!.output![k].name!, depth + 1, constants)) return false;
      setPositionAxis(g!.output![k]);
    }
    return true;
  }
  const isHead = (producer.opType === 'MatMul' && !producer.domain) || (producer.domain === 'com.microsoft' && (producer.opType === 'MatMulNBits' || producer.opType === 'MatMulBnb4'));
  const activations = producer.input?.[0];
  if (!isHead || !activations) return false;
  const weights = producer.input![1];
  // a head multiplies by a constant (an initializer, or one transposed, cast or dequantized in the graph)
  const isConstant = (v: string, hops: number): boolean => {
    if (constants.has(v)) return true;
    const p = producerOf(v);
    return hops > 0 && !!p?.input?.[0] && ['Transpose', 'Cast', 'Identity', 'DequantizeLinear'].includes(p.opType ?? '') && isConstant(p.input[0], hops - 1);
  };
  if (!isConstant(weights, 3)) return false;
  const prefix = `llava_last_position_${depth}`;
  const i64 = (suffix: string, v: number) => ({ name: `${prefix}/${suffix}`, dataType: onnx().TensorProto.DataType.INT64, dims: [1], int64Data: [v] });
  (graph.initializer ??= []).push(i64('starts', -1), i64('ends', Number.MAX_SAFE_INTEGER), i64('axes', -2));
  const sliced = `${prefix}/last`;
  const slice = { opType: 'Slice', name: prefix, input: [activations, `${prefix}/starts`, `${prefix}/ends`, `${prefix}/axes`], output: [sliced] };
  nodes.splice(nodes.indexOf(producer), 0, onnx().NodeProto.create(slice));
  producer.input![0] = sliced;
  return true;
}

/** [B, T, vocab] -> [B, 1, vocab] in a declared output shape */
function setPositionAxis(info: ValueInfo): void {
  const dims = info.type?.tensorType?.shape?.dim;
  if (dims && dims.length === 3) dims[1] = { dimValue: 1 };
}
