// Box coordinates in the frame LLaVA-1.5 reads and writes: 0..1 with 2 decimals of the image padded
// to a centred square with the mean colour (expand2square), the preprocessing our engine applies in
// 'pad' mode. The maths is src/grounding's (imagePixelsToModelFrame / boxToImagePixels); this file
// only builds the pad geometry, which the tests check against the engine's own preprocessing.

import type { ImageGeometry } from '../../src/core';
import { boxToImagePixels, DEFAULT_GROUNDING, formatRegion, imagePixelsToModelFrame, parseBoxes, type Box } from '../../src/grounding';
import type { PixelBox } from './scene';

/** CLIP ViT-L/14-336's input side; any size gives the same norm1 values (no crop after padding). */
export const INPUT_SIDE = 336;

/** expand2square's geometry: side max(w, h), offsets ((side - w) // 2, (side - h) // 2), then resize. */
export function paddedSquareGeometry(width: number, height: number, inputSide = INPUT_SIDE): ImageGeometry {
  const side = Math.max(width, height);
  const scale = inputSide / side;
  return {
    mode: 'pad',
    originalWidth: width,
    originalHeight: height,
    inputWidth: inputSide,
    inputHeight: inputSide,
    padLeft: Math.trunc((side - width) / 2),
    padTop: Math.trunc((side - height) / 2),
    scaleX: scale,
    scaleY: scale,
    cropLeft: 0,
    cropTop: 0,
  };
}

/** A pixel box -> the model's answer text, "[0.12, 0.30, 0.25, 0.45]". */
export function boxAnswer(box: PixelBox, width: number, height: number): string {
  const g = paddedSquareGeometry(width, height);
  const framed = imagePixelsToModelFrame({ x: box[0], y: box[1], width: box[2] - box[0], height: box[3] - box[1] }, 'norm1', g);
  return formatRegion(framed, 'norm1', DEFAULT_GROUNDING.prompts.region);
}

/** The reverse, as the evaluation reads a model's answer: text -> pixel box (undefined when no box). */
export function answerToPixelBox(text: string, width: number, height: number): PixelBox | undefined {
  const parsed = parseBoxes(text, 'norm1')[0];
  if (!parsed) return undefined;
  const r = boxToImagePixels(parsed.box as Box, 'norm1', paddedSquareGeometry(width, height));
  return [r.x, r.y, r.x + r.width, r.y + r.height];
}
