// A small ONNX graph builder over onnx-proto (protobufjs): named graph inputs/outputs with symbolic dims,
// weights pulled one at a time from a `WeightSource` (a checkpoint being converted, or the test
// fixtures' seeded generator) and handed straight to a `TensorSink` (kept in memory for small graphs,
// streamed to an external-data file by the converter), int64/float constants, plain ai.onnx nodes
// (opset 17), com.microsoft MatMulNBits / MatMulBnb4 for 4-bit linear layers, and onnxruntime's dynamic
// 8-bit form (DynamicQuantizeLinear + MatMulInteger / ConvInteger, DequantizeLinear after a Gather).

import onnxProto from 'onnx-proto';
import { f32ToF16, transpose2d } from './floats';
import { Q4_BITS, Q4_BLOCK_SIZE, q4Bytes, quantizeRows4, type Q4BlockSize, type Q4Scales } from './quantize';
import { BNB4_BLOCK_SIZE, BNB4_NF4, quantizePerTensor8, quantizeRowsBnb4, type Bnb4Type, type Int8Kind } from './quantize8';

const { onnx } = onnxProto;
export type TensorProto = InstanceType<typeof onnx.TensorProto>;

export const OPSET = 17;
/**
 * fp32 weights of at least this many elements, and at least this fraction of exact zeros, are stored sparse. ONNX's
 * COO form costs 12 bytes per non-zero (the value and an int64 index) against 4 per element dense: at 90 % zeros
 * the tensor takes 1.2 bytes per element; a 300-of-32,064-row vocabulary table takes 0.11.
 */
export const SPARSE_MIN_ELEMENTS = 1 << 16;
export const SPARSE_MIN_ZERO_FRACTION = 0.9;
/** a sparse initializer's f32 value and int64 index */
const SPARSE_BYTES_PER_VALUE = 12;
export const MS_DOMAIN = 'com.microsoft';
/** ONNX IR version 8 is the newest onnx-proto 8 (onnx 1.10) can describe; ORT 1.30 reads it. */
export const IR_VERSION = 8;

export const DT = {
  FLOAT: onnx.TensorProto.DataType.FLOAT,
  FLOAT16: onnx.TensorProto.DataType.FLOAT16,
  INT64: onnx.TensorProto.DataType.INT64,
  BOOL: onnx.TensorProto.DataType.BOOL,
  UINT8: onnx.TensorProto.DataType.UINT8,
  INT8: onnx.TensorProto.DataType.INT8,
} as const;

export type Dim = number | string;

/** Attribute values are tagged so an int is never written as a float or the reverse. */
export type Attr =
  | { i: number }
  | { f: number }
  | { ints: number[] }
  | { s: string }
  | { t: TensorProto };

export const int = (i: number): Attr => ({ i });
export const float = (f: number): Attr => ({ f });
export const ints = (v: number[]): Attr => ({ ints: v });

/** How a made-up weight is drawn (seeded N(mean, std), or a fixed fill); a checkpoint source ignores it. */
export type WeightInit = { std: number; mean?: number } | { fill: number };

/**
 * Where weight values come from, by HF parameter name (the llava-hf names with the layout prefix
 * removed: `vision_tower.vision_model.*`, `multi_modal_projector.*`, `model.layers.N.*`, `lm_head.*`).
 */
export interface WeightSource {
  /** a weight stored as it is used, `dims` row-major (norm scales, biases, embeddings, conv kernels) */
  tensor(name: string, dims: number[], init: WeightInit): Float32Array;
  /**
   * a linear layer's weight for y = x W: `KN` is ONNX's MatMul layout W [K=in, N=out]; `NK` is
   * PyTorch's nn.Linear layout [out, in] (what MatMulNBits quantizes row by row)
   */
  linear(name: string, K: number, N: number, init: WeightInit, layout: 'KN' | 'NK'): Float32Array;
}

/** Takes each initializer's bytes as soon as they exist; returns the TensorProto the graph lists. */
export interface TensorSink {
  add(tensor: TensorProto, data: Uint8Array): TensorProto;
}

/** Keeps the bytes in the TensorProto (raw_data): for graphs that fit in memory and in protobuf's 2 GB. */
export const inlineSink: TensorSink = {
  add(tensor, data) {
    tensor.rawData = data;
    return tensor;
  },
};

export interface BuilderOptions {
  /** store non-quantized weights as float16 (the `_fp16` files) and Cast them to float32 where used */
  fp16Weights: boolean;
  /** linear layers as MatMulNBits, 4 bits, block 32, symmetric (the `_q4` / `_q4f16` files) */
  q4?: boolean;
  /** with q4: MatMulNBits runs on float16 activations with float16 scales (the fixtures' `_q4f16`) */
  halfMatmul?: boolean;
  /**
   * with q4: MatMulNBits' accuracy_level. Unset (0), onnxruntime dequantizes the weights and multiplies
   * in float32, as the Hub's q4 files do; 4 quantizes each block of activations to int8 on the fly and
   * multiplies in int8 (AVX2 / AVX-512 VNNI / NEON dot products), much faster on a CPU and a little less exact.
   */
  q4AccuracyLevel?: 0 | 4;
  /** with q4: how block scales are chosen (default absmax, as the Hub's files) */
  q4Scales?: Q4Scales;
  /** with q4: weights per block scale (default Q4_BLOCK_SIZE, 32, as the Hub's files) */
  q4Block?: Q4BlockSize;
  /** float16 graph inputs and outputs (pixel_values, image_features, inputs_embeds, logits), cast at the edges */
  halfIO?: boolean;
  /** linear layers as MatMulBnb4, NF4, block 64 (the `_bnb4` files) */
  bnb4?: boolean;
  /** bnb4's code book: NF4 (default, quantize.py's) or FP4 */
  bnb4Type?: Bnb4Type;
  /**
   * onnxruntime's dynamic 8-bit quantization (the `_int8` / `_uint8` / `_quantized` files): MatMul ->
   * DynamicQuantizeLinear + MatMulInteger, Conv -> ConvInteger, an embedding Gather over 8-bit rows +
   * DequantizeLinear; one scale and zero point per weight tensor, weights of this signedness
   */
  int8?: Int8Kind;
  source: WeightSource;
  /** default: inline */
  sink?: TensorSink;
  /** plan only: record every weight the graph needs here, read and store nothing */
  plan?: PlannedWeight[];
}

/** A weight a graph needs: its name, its shape as PyTorch stores it, how a made-up one is drawn. */
export interface PlannedWeight {
  name: string;
  /** [out, in] for linear layers (nn.Linear's layout), else the shape used */
  torchShape: number[];
  linear: boolean;
  init: WeightInit;
}

/**
 * How many values a sparse initializer of `values` holds (every one but +0: a -0 is kept, so the dense tensor comes
 * back bit for bit), or undefined where the tensor is not stored sparse (too small, or too few zeros; a dense
 * tensor is given up on after the first tenth or so of its values).
 */
function sparseCount(values: Float32Array): number | undefined {
  if (values.length < SPARSE_MIN_ELEMENTS) return undefined;
  const most = values.length * (1 - SPARSE_MIN_ZERO_FRACTION);
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if ((values[i] !== 0 || Object.is(values[i], -0)) && ++n > most) return undefined;
  }
  return n;
}

function bytesOf(view: ArrayBufferView): Uint8Array {
  // ONNX raw_data is little-endian; x86/arm hosts are too, so the typed array's bytes are used as is
  return new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
}

function valueInfo(name: string, elemType: number, dims: Dim[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

export class GraphBuilder {
  private readonly nodes: InstanceType<typeof onnx.NodeProto>[] = [];
  readonly initializers: TensorProto[] = [];
  /** weights stored as COO values + indices (see SPARSE_MIN_ZERO_FRACTION); small, always inside the .onnx */
  readonly sparseInitializers: InstanceType<typeof onnx.SparseTensorProto>[] = [];
  private readonly inputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly outputs: InstanceType<typeof onnx.ValueInfoProto>[] = [];
  private readonly weightCache = new Map<string, string>();
  private counter = 0;
  private usesContribOps = false;
  private readonly sink: TensorSink;
  /** count of stored weight values, for the README's size table */
  parameterCount = 0;

  constructor(readonly graphName: string, readonly opts: BuilderOptions) {
    this.sink = opts.sink ?? inlineSink;
  }

  input(name: string, elemType: number, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elemType, dims));
    return name;
  }

  /** The graph I/O type of an activation: float16 with halfIO, else float32. */
  get ioType(): number {
    return this.opts.halfIO ? DT.FLOAT16 : DT.FLOAT;
  }

  /** A float activation input (`ioType`), as float32 for the graph inside. */
  floatInput(name: string, dims: Dim[]): string {
    this.input(name, this.ioType, dims);
    return this.opts.halfIO ? this.op('Cast', [name], { to: int(DT.FLOAT) }) : name;
  }

  /** Names float32 `x` as the graph output `name` of type `ioType`. */
  floatOutput(x: string, name: string, dims: Dim[]): void {
    this.op(this.opts.halfIO ? 'Cast' : 'Identity', [x], this.opts.halfIO ? { to: int(DT.FLOAT16) } : {}, name);
    this.output(name, this.ioType, dims);
  }

  output(name: string, elemType: number, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elemType, dims));
  }

  private fresh(hint: string): string {
    return `/${hint}_${this.counter++}`;
  }

  /** A fresh value name, for a node output that needs naming next to named ones. */
  freshName(hint: string): string {
    return this.fresh(hint);
  }

  /** Adds one node; returns its output names (fresh unless `outputs` names them). */
  node(op: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs: number | string[] = 1, domain = ''): string[] {
    const outNames = typeof outputs === 'number' ? Array.from({ length: outputs }, () => this.fresh(op)) : outputs;
    if (domain === MS_DOMAIN) this.usesContribOps = true;
    const attribute = Object.entries(attrs).map(([name, a]) => {
      if ('i' in a) return { name, type: onnx.AttributeProto.AttributeType.INT, i: a.i };
      if ('f' in a) return { name, type: onnx.AttributeProto.AttributeType.FLOAT, f: a.f };
      if ('ints' in a) return { name, type: onnx.AttributeProto.AttributeType.INTS, ints: a.ints };
      if ('s' in a) return { name, type: onnx.AttributeProto.AttributeType.STRING, s: new TextEncoder().encode(a.s) };
      return { name, type: onnx.AttributeProto.AttributeType.TENSOR, t: a.t };
    });
    this.nodes.push(onnx.NodeProto.create({ opType: op, domain, input: inputs, output: outNames, name: this.fresh(op).slice(1), attribute }));
    return outNames;
  }

  /** Single-output shorthand for `node`. */
  op(op: string, inputs: string[], attrs: Record<string, Attr> = {}, outputName?: string): string {
    return this.node(op, inputs, attrs, outputName ? [outputName] : 1)[0];
  }

  /**
   * A large fp32 weight that is mostly exact zeros (the vocabulary rows a small model never uses: its lm_head rows
   * stay 0 in training) as a sparse initializer: the non-zero values and their linear indices. ONNX Runtime makes
   * it dense when it loads the graph, so nothing else changes; the file holds only what is there.
   */
  private addSparseIfMostlyZero(name: string, dims: number[], values: Float32Array): boolean {
    const nonZero = sparseCount(values);
    if (nonZero === undefined) return false;
    const kept = new Float32Array(nonZero);
    const at = new BigInt64Array(nonZero);
    for (let i = 0, k = 0; i < values.length; i++) {
      if (values[i] !== 0 || Object.is(values[i], -0)) {
        kept[k] = values[i];
        at[k++] = BigInt(i);
      }
    }
    this.sparseInitializers.push(
      onnx.SparseTensorProto.create({
        values: onnx.TensorProto.create({ name, dataType: DT.FLOAT, dims: [nonZero], rawData: bytesOf(kept) }),
        indices: onnx.TensorProto.create({ name: `${name}_indices`, dataType: DT.INT64, dims: [nonZero], rawData: bytesOf(at) }),
        dims,
      }),
    );
    return true;
  }

  private addInitializer(name: string, dataType: number, dims: number[], raw: ArrayBufferView): void {
    this.initializers.push(this.sink.add(onnx.TensorProto.create({ name, dataType, dims }), bytesOf(raw)));
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const_i64');
    this.addInitializer(name, DT.INT64, dims, BigInt64Array.from(values.map((v) => BigInt(v))));
    return name;
  }

  constF32(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const_f32');
    this.addInitializer(name, DT.FLOAT, dims, Float32Array.from(values));
    return name;
  }

  /** A float32 constant table computed by the graph's author (rotary caches): not a weight, not from the source. */
  constTensor(values: Float32Array, dims: number[]): string {
    const name = this.fresh('const_table');
    this.addInitializer(name, DT.FLOAT, dims, values);
    return name;
  }

  /** A scalar float constant ([] shape), for Mul/Add/Div broadcasting. */
  scalar(value: number): string {
    return this.constF32([value], []);
  }

  /**
   * A named weight from the source, stored as float32 or (fp16Weights) float16. Returns the name of
   * a float32 tensor: the initializer itself or a Cast of the float16 one. `keepStored` returns the
   * stored tensor instead (the fp16 embedding table is gathered first and cast after, like real exports).
   */
  weight(name: string, dims: number[], init: WeightInit, keepStored = false): string {
    const cacheKey = `${name}|${keepStored}`;
    const cached = this.weightCache.get(cacheKey);
    if (cached) return cached;
    if (this.opts.plan) {
      this.opts.plan.push({ name, torchShape: dims, linear: false, init });
      this.weightCache.set(cacheKey, name);
      return name;
    }
    const values = this.opts.source.tensor(name, dims, init);
    const result = this.storeFloat(name, dims, values, keepStored);
    this.weightCache.set(cacheKey, result);
    return result;
  }

  private storeFloat(name: string, dims: number[], values: Float32Array, keepStored: boolean): string {
    this.parameterCount += values.length;
    if (!this.opts.fp16Weights) {
      if (!this.addSparseIfMostlyZero(name, dims, values)) this.addInitializer(name, DT.FLOAT, dims, values);
      return name;
    }
    this.addInitializer(name, DT.FLOAT16, dims, f32ToF16(values));
    return keepStored ? name : this.op('Cast', [name], { to: int(DT.FLOAT) }, `${name}_f32`);
  }

  /**
   * x [.., K] @ W (W = the linear layer `name`, K inputs, N outputs) -> [.., N]. In q4 files a
   * com.microsoft MatMulNBits over W quantized block-wise (uint8 [N, K/32, 16] + f32 scales [N * K/32]),
   * as onnxruntime's MatMul4BitsQuantizer writes it; otherwise MatMul over W stored [K, N].
   */
  matmul(x: string, name: string, K: number, N: number, init: WeightInit): string {
    if (this.opts.plan) {
      if (!this.weightCache.has(`${name}|plan`)) this.opts.plan.push({ name, torchShape: [N, K], linear: true, init });
      this.weightCache.set(`${name}|plan`, name);
      return this.op('MatMul', [x, name]);
    }
    if (this.opts.int8) return this.matmulInteger(x, name, K, N, init, this.opts.int8);
    if (this.opts.bnb4) return this.matmulBnb4(x, name, K, N, init);
    if (!this.opts.q4) {
      const w = this.weightCache.get(`${name}|linear`) ?? this.storeFloat(name, [K, N], this.opts.source.linear(name, K, N, init, 'KN'), false);
      this.weightCache.set(`${name}|linear`, w);
      return this.op('MatMul', [x, w]);
    }
    const bName = `${name}_Q4`;
    const sName = `${name}_scales`;
    const half = this.opts.halfMatmul === true;
    const block = this.opts.q4Block ?? Q4_BLOCK_SIZE;
    const sparse = this.weightCache.get(`${name}|sparse`);
    if (sparse) return this.op('MatMul', [x, sparse]);
    if (!this.weightCache.has(`${name}|q4`)) {
      const nk = this.opts.source.linear(name, K, N, init, 'NK');
      const nonZero = half ? undefined : sparseCount(nk);
      if (nonZero !== undefined && nonZero * SPARSE_BYTES_PER_VALUE < q4Bytes(N, K, block)) {
        // mostly exact zeros (the lm_head rows of tokens a small model never saw): its non-zero values in f32
        // take less room than 4 bits for every weight, and are exact
        const w = this.storeFloat(name, [K, N], transpose2d(nk, N, K), false);
        this.weightCache.set(`${name}|sparse`, w);
        return this.op('MatMul', [x, w]);
      }
      const q = quantizeRows4(nk, N, K, block, this.opts.q4Scales);
      this.parameterCount += K * N;
      this.addInitializer(bName, DT.UINT8, [N, q.nBlocks, q.blobSize], q.packed);
      // q4f16 keeps its scales in float16, the type of the activations they multiply
      if (half) this.addInitializer(sName, DT.FLOAT16, [N * q.nBlocks], f32ToF16(q.scales));
      else this.addInitializer(sName, DT.FLOAT, [N * q.nBlocks], q.scales);
      this.weightCache.set(`${name}|q4`, bName);
    }
    this.usesContribOps = true;
    const attrs = {
      K: int(K), N: int(N), bits: int(Q4_BITS), block_size: int(block),
      ...(this.opts.q4AccuracyLevel ? { accuracy_level: int(this.opts.q4AccuracyLevel) } : {}),
    };
    if (!half) return this.node('MatMulNBits', [x, bName, sName], attrs, 1, MS_DOMAIN)[0];
    // q4f16: float16 activations through the 4-bit MatMul, float32 again after it
    const y = this.node('MatMulNBits', [this.op('Cast', [x], { to: int(DT.FLOAT16) }), bName, sName], attrs, 1, MS_DOMAIN)[0];
    return this.op('Cast', [y], { to: int(DT.FLOAT) });
  }

  /** Per-tensor 8-bit weight + its scale and zero point initializers, by ORT's quantizer's names. */
  private weight8(name: string, dims: number[], values: Float32Array, kind: Int8Kind): { q: string; scale: string; zp: string } {
    const names = { q: `${name}_quantized`, scale: `${name}_scale`, zp: `${name}_zero_point` };
    if (this.weightCache.has(`${name}|8bit`)) return names;
    const p = quantizePerTensor8(values, kind);
    const type = kind === 'int8' ? DT.INT8 : DT.UINT8;
    this.parameterCount += values.length;
    this.addInitializer(names.q, type, dims, p.q);
    this.addInitializer(names.scale, DT.FLOAT, [], Float32Array.of(p.scale));
    this.addInitializer(names.zp, type, [], kind === 'int8' ? Int8Array.of(p.zeroPoint) : Uint8Array.of(p.zeroPoint));
    this.weightCache.set(`${name}|8bit`, names.q);
    return names;
  }

  /** uint8 x, its scale and zero point (one DynamicQuantizeLinear per float input, shared by its consumers). */
  private dynamicQuantize(x: string): [string, string, string] {
    const key = `${x}|dql`;
    const cached = this.weightCache.get(key);
    if (cached) return cached.split('\n') as [string, string, string];
    const outs = this.node('DynamicQuantizeLinear', [x], {}, 3) as [string, string, string];
    this.weightCache.set(key, outs.join('\n'));
    return outs;
  }

  /** y = (int32 (x_q - x_zp) @ (W_q - W_zp)) * x_scale * W_scale */
  private matmulInteger(x: string, name: string, K: number, N: number, init: WeightInit, kind: Int8Kind): string {
    const w = this.weightCache.has(`${name}|8bit`) ? undefined : this.opts.source.linear(name, K, N, init, 'KN');
    const { q, scale, zp } = this.weight8(name, [K, N], w ?? new Float32Array(0), kind);
    const [xq, xs, xzp] = this.dynamicQuantize(x);
    const acc = this.op('MatMulInteger', [xq, q, xzp, zp]);
    return this.op('Mul', [this.op('Cast', [acc], { to: int(DT.FLOAT) }), this.op('Mul', [xs, scale])]);
  }

  /** MatMulBnb4 over the [N, K] weight, NF4 codes in blocks of 64 */
  private matmulBnb4(x: string, name: string, K: number, N: number, init: WeightInit): string {
    const bName = `${name}_Bnb4`;
    const aName = `${name}_absmax`;
    if (!this.weightCache.has(`${name}|bnb4`)) {
      const q = quantizeRowsBnb4(this.opts.source.linear(name, K, N, init, 'NK'), N, K, BNB4_BLOCK_SIZE, this.opts.bnb4Type ?? BNB4_NF4);
      this.parameterCount += K * N;
      this.addInitializer(bName, DT.UINT8, [q.packed.length], q.packed);
      this.addInitializer(aName, DT.FLOAT, [q.absmax.length], q.absmax);
      this.weightCache.set(`${name}|bnb4`, bName);
    }
    this.usesContribOps = true;
    const attrs = { K: int(K), N: int(N), block_size: int(BNB4_BLOCK_SIZE), quant_type: int(this.opts.bnb4Type ?? BNB4_NF4) };
    return this.node('MatMulBnb4', [x, bName, aName], attrs, 1, MS_DOMAIN)[0];
  }

  /**
   * Conv of x by the weight `name` [outC, inC, kh, kw] (+ bias). In 8-bit files a ConvInteger over the
   * dynamically quantized input, scaled back and the float bias added after, as quantize_dynamic does.
   */
  conv(x: string, name: string, dims: number[], init: WeightInit, bias: string | undefined, attrs: Record<string, Attr>): string {
    if (!this.opts.int8 || this.opts.plan) return this.op('Conv', bias ? [x, this.weight(name, dims, init), bias] : [x, this.weight(name, dims, init)], attrs);
    const { q, scale, zp } = this.weight8(name, dims, this.opts.source.tensor(name, dims, init), this.opts.int8);
    const [xq, xs, xzp] = this.dynamicQuantize(x);
    const acc = this.op('ConvInteger', [xq, q, xzp, zp], attrs);
    const y = this.op('Mul', [this.op('Cast', [acc], { to: int(DT.FLOAT) }), this.op('Mul', [xs, scale])]);
    return bias ? this.op('Add', [y, this.op('Reshape', [bias, this.constI64([1, dims[0], 1, 1])])]) : y;
  }

  /** Rows of the table `name` [rows, dim] at `ids`, float32; 8-bit files gather codes and dequantize after. */
  gatherRows(name: string, dims: number[], init: WeightInit, ids: string, outputName?: string): string {
    if (!this.opts.int8 || this.opts.plan) {
      const table = this.weight(name, dims, init, true);
      const castAfter = this.opts.fp16Weights !== !!this.opts.halfIO; // stored and wanted types differ
      const rows = this.op('Gather', [table, ids], { axis: int(0) }, castAfter ? undefined : outputName);
      return castAfter ? this.op('Cast', [rows], { to: int(this.opts.halfIO ? DT.FLOAT16 : DT.FLOAT) }, outputName) : rows;
    }
    const { q, scale, zp } = this.weight8(name, dims, this.opts.source.tensor(name, dims, init), this.opts.int8);
    const rows = this.op('DequantizeLinear', [this.op('Gather', [q, ids], { axis: int(0) }), scale, zp], {}, this.opts.halfIO ? undefined : outputName);
    return this.opts.halfIO ? this.op('Cast', [rows], { to: int(DT.FLOAT16) }, outputName) : rows;
  }

  /** Dynamic dimension `axis` of `tensor` as an int64 [1] tensor. */
  dim(tensor: string, axis: number): string {
    const shape = this.op('Shape', [tensor]);
    return this.op('Gather', [shape, this.constI64([axis])], { axis: int(0) });
  }

  /** The model without its initializers (the writer streams those after it). */
  modelWithoutInitializers(): InstanceType<typeof onnx.ModelProto> {
    const opsetImport = [{ domain: '', version: OPSET }];
    if (this.usesContribOps) opsetImport.push({ domain: MS_DOMAIN, version: 1 });
    return onnx.ModelProto.create({
      irVersion: IR_VERSION,
      producerName: 'llava-vscode convert',
      producerVersion: '1',
      opsetImport,
      graph: { name: this.graphName, node: this.nodes, input: this.inputs, output: this.outputs, sparseInitializer: this.sparseInitializers },
    });
  }

  /** The whole model as one protobuf (initializers inline or referencing external data, as the sink made them). */
  encode(): Uint8Array {
    const model = this.modelWithoutInitializers();
    model.graph!.initializer = this.initializers;
    return onnx.ModelProto.encode(model).finish();
  }
}
