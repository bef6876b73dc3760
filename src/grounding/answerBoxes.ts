// Host-side grounding glue: which box frame and referring prompts the configured model uses, and
// an answer's text -> AnswerBox[] on one original image (parse with the model's frame, map back
// through the image's preprocessing geometry, drop what falls outside the image).
// No vscode import: plain Node tests exercise every function here.

import {
  boxToImagePixels,
  describeRegionPrompt,
  findPrompt,
  imagePixelsToModelFrame,
  isEmptyRect,
  parseBoxes,
  type ReferringPrompts,
} from './boxes';
import type { BoxFrame, ImageGeometry } from '../core';
import type { AnswerBox, ImageRect } from '../protocol';

/** How one model writes and reads boxes. */
export interface GroundingSpec {
  frame: BoxFrame;
  prompts: ReferringPrompts;
  /** where it came from, for the log: the catalog entry, the folder's override file, or the default */
  source: 'catalog' | 'folder' | 'default';
}

/**
 * A local folder that is not a catalog entry is taken to be LLaVA-1.5-like (the seed model): boxes
 * as [x1, y1, x2, y2] in 0..1 of the model's input frame (norm1). Which region of the image that frame
 * covers follows the preprocessing geometry the engine reports (the padded square in 'pad' mode, the
 * centre crop in 'crop' mode, the stretched image in 'resize' mode), not an assumption made here.
 * Prompts: LLaVA-1.5's own referring prompts
 * (LLaVA-1.5 paper, appendix: "Please provide the bounding box coordinate of the region this
 * sentence describes: ..." / "Please provide a short description for this region: [...]").
 * A folder can say otherwise in OVERRIDE_FILE.
 */
export const DEFAULT_GROUNDING: GroundingSpec = {
  frame: 'norm1',
  prompts: {
    find: 'Please provide the bounding box coordinate of the region this sentence describes: {phrase}',
    describeRegion: 'Please provide a short description for this region: {region}',
    region: '[{x1}, {y1}, {x2}, {y2}]',
  },
  source: 'default',
};

/** `<model folder>/llava-grounding.json`: `{ "boxFrame": "norm1000", "prompts": { "find": "…{phrase}…" } }` (every key optional). */
export const OVERRIDE_FILE = 'llava-grounding.json';

const FRAMES: readonly BoxFrame[] = ['norm1', 'norm1000', 'input_pixels', 'loc_tokens'];

/**
 * Applies a folder's override file (parsed JSON) to the default. Returns an error message instead
 * of throwing for a bad file, so the caller can log it and go on with the default.
 */
export function groundingFromOverride(json: unknown, base: GroundingSpec = DEFAULT_GROUNDING): GroundingSpec | { error: string } {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return { error: 'expected a JSON object' };
  const o = json as Record<string, unknown>;
  let frame = base.frame;
  if (o.boxFrame !== undefined) {
    if (!FRAMES.includes(o.boxFrame as BoxFrame)) return { error: `boxFrame must be one of ${FRAMES.join(', ')}` };
    frame = o.boxFrame as BoxFrame;
  }
  const prompts = { ...base.prompts };
  if (o.prompts !== undefined) {
    if (typeof o.prompts !== 'object' || o.prompts === null) return { error: 'prompts must be an object' };
    const p = o.prompts as Record<string, unknown>;
    const need: Record<keyof ReferringPrompts, string[]> = {
      find: ['{phrase}'],
      describeRegion: ['{region}'],
      region: ['{x1}', '{y1}', '{x2}', '{y2}'],
    };
    for (const key of Object.keys(need) as (keyof ReferringPrompts)[]) {
      const v = p[key];
      if (v === undefined) continue;
      if (typeof v !== 'string') return { error: `prompts.${key} must be a string` };
      const missing = need[key].filter((ph) => !v.includes(ph));
      if (missing.length) return { error: `prompts.${key} must contain ${missing.join(' ')}` };
      prompts[key] = v;
    }
  }
  return { frame, prompts, source: 'folder' };
}

/**
 * The boxes of an answer on one image, in the order the text gives them. Boxes that fall entirely
 * outside what the model saw (in the padding, or off a centre crop) are dropped; the rest are
 * clamped to the image by boxToImagePixels. Never throws on model text.
 */
export function answerBoxes(text: string, frame: BoxFrame, geometry: ImageGeometry): AnswerBox[] {
  const out: AnswerBox[] = [];
  for (const b of parseBoxes(text, frame)) {
    const r = boxToImagePixels(b.box, frame, geometry);
    if (isEmptyRect(r) || ![r.x, r.y, r.width, r.height].every(Number.isFinite)) continue;
    out.push({ phrase: b.phrase, x: r.x, y: r.y, width: r.width, height: r.height, start: b.start, end: b.end });
  }
  return out;
}

/**
 * Boxes of an answer that is still streaming: re-parses only when the new text could have closed a
 * box (a closing bracket or tag), and reports the list only when it changed. Boxes appear as they
 * complete; an unfinished box at the end of the text is not one yet (parseBoxes skips it).
 */
export class StreamingBoxes {
  private text = '';
  private last = '[]';

  constructor(
    private readonly frame: BoxFrame,
    private readonly geometry: ImageGeometry | undefined,
  ) {}

  /** Appends a delta; returns the whole new list when it changed, else undefined. */
  push(delta: string): AnswerBox[] | undefined {
    this.text += delta;
    if (!this.geometry || !/[\])>]/.test(delta)) return undefined;
    return this.changed(answerBoxes(this.text, this.frame, this.geometry));
  }

  private changed(boxes: AnswerBox[]): AnswerBox[] | undefined {
    const key = JSON.stringify(boxes);
    if (key === this.last) return undefined;
    this.last = key;
    return boxes;
  }
}

/** The referring-expression question for `phrase`, in the model's own wording. */
export function findQuestion(spec: GroundingSpec, phrase: string): string {
  return findPrompt(spec.prompts, phrase);
}

/** The describe-region question for a rectangle in original-image pixels. */
export function describeRegionQuestion(spec: GroundingSpec, rect: ImageRect, geometry: ImageGeometry): string {
  const clamped = clampRect(rect, geometry.originalWidth, geometry.originalHeight);
  return describeRegionPrompt(spec.prompts, imagePixelsToModelFrame(clamped, spec.frame, geometry), spec.frame);
}

export function clampRect(r: ImageRect, width: number, height: number): ImageRect {
  const x1 = Math.min(width, Math.max(0, Math.min(r.x, r.x + r.width)));
  const y1 = Math.min(height, Math.max(0, Math.min(r.y, r.y + r.height)));
  const x2 = Math.min(width, Math.max(0, Math.max(r.x, r.x + r.width)));
  const y2 = Math.min(height, Math.max(0, Math.max(r.y, r.y + r.height)));
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

/**
 * Which image an answer's boxes are drawn on: the image a Find / Describe asked about, else the
 * last image the conversation had sent up to that answer (LLaVA answers about the latest image).
 * `imageIds` are the conversation's sent images in order, parallel to the done event's geometries.
 */
export function boxTarget(imageIds: readonly string[], requested?: string): string | undefined {
  if (requested && imageIds.includes(requested)) return requested;
  return imageIds.at(-1);
}
