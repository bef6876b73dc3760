// The image half of the model: vision_encoder runs the vision tower and the projector in one graph,
// so its output rows are already in the text model's embedding space.

import * as ort from 'onnxruntime-node';
import { ModelLoadError } from '../core';
import { fromHalf, toHalf } from './half';
import { requireInput, requireOutput, type Session, type TensorInfo } from './onnx';
import type { PreprocessedImage } from '../core';

export interface ImageFeatures {
  /** [rows, hidden] f32: one row per `<image>` token in the prompt */
  data: Float32Array;
  rows: number;
  hidden: number;
}

export class VisionEncoder {
  private readonly input: TensorInfo;
  private readonly output: TensorInfo;

  constructor(
    private readonly session: Session,
    readonly file: string,
  ) {
    // Names are data: the first input/output unless the conventional names exist.
    const inName = session.inputNames.includes('pixel_values') ? 'pixel_values' : session.inputNames[0];
    const outName = session.outputNames.includes('image_features') ? 'image_features' : session.outputNames[0];
    this.input = requireInput(session, file, inName);
    this.output = requireOutput(session, file, outName);
  }

  /**
   * Encodes images of one size in one batch: pixel_values [B, 3, H, W] -> image_features [B, N, hidden].
   * Images of different sizes go through in separate runs.
   */
  async encode(images: PreprocessedImage[]): Promise<ImageFeatures[]> {
    const groups = new Map<string, number[]>();
    images.forEach((img, i) => {
      const key = `${img.geometry.inputWidth}x${img.geometry.inputHeight}`;
      groups.set(key, [...(groups.get(key) ?? []), i]);
    });
    const result: ImageFeatures[] = new Array(images.length);
    for (const indices of groups.values()) {
      const { inputWidth: w, inputHeight: h } = images[indices[0]].geometry;
      const plane = 3 * h * w;
      const batch = new Float32Array(indices.length * plane); // [B, 3, H, W] f32
      indices.forEach((imgIndex, b) => batch.set(images[imgIndex].pixelValues, b * plane));
      const tensor =
        this.input.type === 'float16'
          ? new ort.Tensor('float16', toHalf(batch), [indices.length, 3, h, w])
          : new ort.Tensor('float32', batch, [indices.length, 3, h, w]);
      const out = (await this.session.run({ [this.input.name]: tensor }))[this.output.name];
      if (out.dims.length !== 3 || out.dims[0] !== indices.length) {
        throw new ModelLoadError(`${this.file}: ${this.output.name} has shape [${out.dims.join(', ')}], expected [${indices.length}, N, hidden]`);
      }
      const [, rows, hidden] = out.dims;
      const all = out.type === 'float16' ? fromHalf(out.data as Uint16Array) : (out.data as Float32Array);
      indices.forEach((imgIndex, b) => {
        result[imgIndex] = { data: all.slice(b * rows * hidden, (b + 1) * rows * hidden), rows, hidden };
      });
      out.dispose();
    }
    return result;
  }
}
