// A small ONNX graph builder over onnx-proto (protobufjs): named graph inputs/outputs with symbolic dims,
// weights pulled one at a time from a `WeightSource` (a checkpoint being converted, or the test
// fixtures' seeded generator) and handed straight to a `TensorSink` (kept in memory for small graphs,
// streamed to an external-data file by the converter), int64/float constants, plain ai.onnx nodes
// (opset 17) and com.microsoft MatMulNBits for 4-bit linear layers.

import onnxProto from 'onnx-proto';
import { f32ToF16 } from './floats';
import { Q4_BITS, Q4_BLOCK_SIZE, quantizeRows4 } from './quantize';

const { onnx } = onnxProto;
export type TensorProto = InstanceType<typeof onnx.TensorProto>;

export const OPSET = 17;
export const MS_DOMAIN = 'com.microsoft';
/** ONNX IR version 8 is the newest onnx-proto 8 (onnx 1.10) can describe; ORT 1.30 reads it. */
export const IR_VERSION = 8;

export const DT = {
  FLOAT: onnx.TensorProto.DataType.FLOAT,
  FLOAT16: onnx.TensorProto.DataType.FLOAT16,
  INT64: onnx.TensorProto.DataType.INT64,
  BOOL: onnx.TensorProto.DataType.BOOL,
  UINT8: onnx.TensorProto.DataType.UINT8,
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
      this.addInitializer(name, DT.FLOAT, dims, values);
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
    if (!this.opts.q4) {
      const w = this.weightCache.get(`${name}|linear`) ?? this.storeFloat(name, [K, N], this.opts.source.linear(name, K, N, init, 'KN'), false);
      this.weightCache.set(`${name}|linear`, w);
      return this.op('MatMul', [x, w]);
    }
    const bName = `${name}_Q4`;
    const sName = `${name}_scales`;
    if (!this.weightCache.has(`${name}|q4`)) {
      const q = quantizeRows4(this.opts.source.linear(name, K, N, init, 'NK'), N, K);
      this.parameterCount += K * N;
      this.addInitializer(bName, DT.UINT8, [N, q.nBlocks, q.blobSize], q.packed);
      this.addInitializer(sName, DT.FLOAT, [N * q.nBlocks], q.scales);
      this.weightCache.set(`${name}|q4`, bName);
    }
    this.usesContribOps = true;
    return this.node('MatMulNBits', [x, bName, sName], { K: int(K), N: int(N), bits: int(Q4_BITS), block_size: int(Q4_BLOCK_SIZE) }, 1, MS_DOMAIN)[0];
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
      graph: { name: this.graphName, node: this.nodes, input: this.inputs, output: this.outputs },
    });
  }

  /** The whole model as one protobuf (initializers inline or referencing external data, as the sink made them). */
  encode(): Uint8Array {
    const model = this.modelWithoutInitializers();
    model.graph!.initializer = this.initializers;
    return onnx.ModelProto.encode(model).finish();
  }
}
