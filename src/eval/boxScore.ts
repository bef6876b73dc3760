// Grounding accuracy: the model's box (parsed in its own frame, mapped back to image pixels through
// the preprocessing geometry by src/grounding) against the true box; IoU >= 0.5 counts as correct,
// as in the referring-expression benchmarks LLaVA-1.5 reports.

import type { BoxFrame, ImageGeometry } from '../core';
import { answerBoxes, groundingForCurrentModel } from '../grounding';
import { readQuestions } from './dataFiles';

/** [x1, y1, x2, y2] in original-image pixels */
export type PixelBox = [number, number, number, number];

export interface GroundingItem {
  id: string;
  image: string;
  phrase: string;
  /** the question as sent */
  text: string;
  box: PixelBox;
}

export function loadGrounding(file: string): Promise<GroundingItem[]> {
  return readQuestions(file, (l) => {
    const box = l.o.box;
    if (!Array.isArray(box) || box.length !== 4 || !box.every((v) => typeof v === 'number' && Number.isFinite(v)) || box[2] <= box[0] || box[3] <= box[1]) {
      l.fail('"box" must be [x1, y1, x2, y2] with x1 < x2 and y1 < y2');
    }
    return { phrase: l.str('phrase'), box: box as PixelBox };
  });
}

/** Intersection over union of two boxes; 0 when either is empty. */
export function iou(a: PixelBox, b: PixelBox): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

/** The first box of an answer in original-image pixels, or undefined when it holds none. */
export function predictedBox(answer: string, frame: BoxFrame, geometry: ImageGeometry): PixelBox | undefined {
  const b = answerBoxes(answer, frame, geometry)[0];
  return b ? [b.x, b.y, b.x + b.width, b.y + b.height] : undefined;
}

/** The frame a model folder writes boxes in: its `llava-grounding.json`, else LLaVA-1.5's (norm1 of the padded square). */
export async function modelBoxFrame(modelDir: string, warn: (line: string) => void): Promise<BoxFrame> {
  const spec = await groundingForCurrentModel({ current: async () => ({ kind: 'folder', path: modelDir }), log: { warn } });
  return spec.frame;
}
