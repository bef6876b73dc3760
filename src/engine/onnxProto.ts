// onnx-proto (protobufjs), loaded on first use: most engines never edit or build a graph, and protobufjs costs
// ~30 ms to load.

import type OnnxProto from 'onnx-proto';

export type Onnx = typeof OnnxProto.onnx;
let onnxNs: Onnx | undefined;

export function onnx(): Onnx {
  onnxNs ??= (require('onnx-proto') as typeof OnnxProto).onnx;
  return onnxNs;
}
