// Conversion of llava-hf checkpoints (safetensors, LLaVA-1.5 and its name layouts) into the
// transformers.js ONNX layout our engine loads, on the user's machine, without Python; and the ONNX
// graph builders that conversion shares with the test fixtures. Depends on core only: never the
// engine (no onnxruntime needed to convert), never vscode, never the hub (callers download first).

export { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16, roundToF16Grid, transpose2d } from './floats';
export { SafetensorsCheckpoint, checkpointShards, readSafetensorsHeader, type SafetensorsDtype, type TensorInfo } from './safetensors';
export { DT, GraphBuilder, MS_DOMAIN, inlineSink, type BuilderOptions, type PlannedWeight, type TensorSink, type WeightInit, type WeightSource } from './onnxBuilder';
export { Q4_BLOCK_SIZE, Q4_BLOCK_SIZES, dequantizeBlockwise4, quantizeBlockwise4, quantizeRows4, type BlockwiseQ4, type Q4BlockSize, type Q4Scales } from './quantize';
export { BNB4_BLOCK_SIZE, BNB4_FP4, BNB4_NF4, FP4_LEVELS, NF4_LEVELS, dequantizePerTensor8, dequantizeRowsBnb4, quantizePerTensor8, quantizeRowsBnb4, type BlockwiseBnb4, type Bnb4Type, type Int8Kind, type PerTensor8 } from './quantize8';
export { headDim, imageTokenCount, layersComputed, type LlavaSpec, type TextSpec, type VisionSpec } from './spec';
export { DIMS, buildDecoder, buildEmbedTokens } from './textGraphs';
export { buildVisionEncoder } from './visionGraph';
export { CheckpointSource, checkpointName, detectLayout, type NameLayout } from './checkpoint';
export { specFromLlavaConfig } from './llavaConfig';
export { ExternalDataSink, INLINE_LIMIT_BYTES, writeModel } from './onnxWriter';
export {
  CONVERT_DTYPES, FAST_GRAPH_DTYPES, MANIFEST, convertCheckpoint, estimateBytes, planSession,
  type ConvertDtype, type DecoderGraph, type ConvertOptions, type ConvertPart, type ConvertProgress, type ConvertResult, type SessionName,
} from './convert';
export { buildFastDecoder } from './fastDecoder';
