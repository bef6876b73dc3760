// Brings tensors that live in GPU memory (WebGPU `gpu-buffer` outputs) back to the host.
//
// onnxruntime-node 1.30's Tensor.getData() on such a tensor aborts the whole process (a native
// "terminate called after throwing an instance of 'char const*'", seen with Dawn on Vulkan), so it is
// never called. Instead a one-node Identity session on the same provider, whose output is left on the
// host, copies through ONNX Runtime's own device-to-host transfer: the path every host output of a GPU
// session already takes. The logits get a Slice instead: only the last position's row crosses.

import * as ort from 'onnxruntime-node';
import { onnx } from './onnxProto';

/** ONNX element types of the tensors a copy session takes (TensorProto.DataType: FLOAT 1, FLOAT16 10). */
const ELEM: Partial<Record<ort.Tensor.Type, number>> = { float32: 1, float16: 10 };

type CopyKind = 'whole' | 'lastRow';

export class DeviceCopier {
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();

  /** `options`: the provider's session options (the copy runs where the tensors live) */
  constructor(private readonly options: ort.InferenceSession.SessionOptions) {}

  /** A host copy of `t` (a host tensor is returned as it is). The device tensor is left to the caller. */
  async toHost(t: ort.Tensor): Promise<ort.Tensor> {
    if (t.location === 'cpu') return t;
    const out = await (await this.session('whole', t.type)).run({ x: t });
    return out.y;
  }

  /** [B, T, V] on the device -> a host copy of [B, 1, V], its last position (the logits that pick the next token). */
  async lastRowToHost(t: ort.Tensor): Promise<ort.Tensor> {
    if (t.location === 'cpu') return t;
    const out = await (await this.session('lastRow', t.type)).run({ x: t });
    return out.y;
  }

  async release(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((s) => s.then((x) => x.release()).catch(() => {})));
  }

  private session(kind: CopyKind, type: ort.Tensor.Type): Promise<ort.InferenceSession> {
    const key = `${kind}:${type}`;
    let s = this.sessions.get(key);
    if (!s) {
      const elem = ELEM[type];
      if (elem === undefined) return Promise.reject(new Error(`cannot copy a ${type} tensor from the GPU`));
      const { preferredOutputLocation: _, ...options } = this.options;
      s = ort.InferenceSession.create(kind === 'whole' ? identityModel(elem) : lastRowModel(elem), options);
      this.sessions.set(key, s);
    }
    return s;
  }
}

/** ONNX bytes of y = Identity(x), x [B, H, P, D] (the KV cache). */
export function identityModel(elemType: number): Uint8Array {
  return oneNodeModel(elemType, 4, { opType: 'Identity', input: ['x'], output: ['y'], name: 'copy' }, []);
}

/** ONNX bytes of y = x[:, -1:, :], x [B, T, V] (the logits). */
export function lastRowModel(elemType: number): Uint8Array {
  const i64 = (name: string, v: number) => ({ name, dataType: onnx().TensorProto.DataType.INT64, dims: [1], int64Data: [v] });
  const inits = [i64('starts', -1), i64('ends', Number.MAX_SAFE_INTEGER), i64('axes', 1)];
  return oneNodeModel(elemType, 3, { opType: 'Slice', input: ['x', 'starts', 'ends', 'axes'], output: ['y'], name: 'last_row' }, inits);
}

function oneNodeModel(elemType: number, rank: number, node: object, initializer: object[]): Uint8Array {
  const valueInfo = (name: string) => ({
    name,
    type: { tensorType: { elemType, shape: { dim: Array.from({ length: rank }, (_, i) => ({ dimParam: `${name}_${i}` })) } } },
  });
  const model = onnx().ModelProto.create({
    irVersion: 8,
    producerName: 'llava-vscode',
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'device_to_host', node: [node], initializer, input: [valueInfo('x')], output: [valueInfo('y')] },
  });
  return onnx().ModelProto.encode(model).finish();
}
