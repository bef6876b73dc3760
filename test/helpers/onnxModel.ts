// A one-graph ModelProto (opset 17) for tests that build small ONNX files by hand.

import { onnx } from '../../src/engine/onnxProto';

export function modelBytes(graph: import('onnx-proto').onnx.IGraphProto): Uint8Array {
  return onnx().ModelProto.encode({ irVersion: 8, opsetImport: [{ domain: '', version: 17 }], graph }).finish();
}
