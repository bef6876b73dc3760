// Grounding: boxes written by the model in its answer text -> rectangles on the original image,
// and the reverse (a region the user drew -> the coordinates the model expects in a prompt).
//
// Every model writes boxes in its own frame (see BoxFrame in types.ts); the frame is data on the
// model's catalog entry, never an `if` on its name. The chain for one coordinate is
//   frame units -> model-input pixels -> inverse of the preprocessing affine -> original pixels
// where the affine (types.ts, ImageGeometry) is
//   inputX = (x + padLeft) * scaleX - cropLeft        inputY = (y + padTop) * scaleY - cropTop
// Pure functions only: no I/O, no throwing on model text (it is untrusted and may be cut mid-box
// while streaming).

import type { BoxFrame, ImageGeometry, ReferringPrompts } from '../core';

export type { ReferringPrompts };

/** [x1, y1, x2, y2] with x1 <= x2 and y1 <= y2, in the units of some frame. */
export type Box = [number, number, number, number];

export interface ParsedBox {
  /** the label next to the box ('' when the text gives none) */
  phrase: string;
  /** in the model's frame, sorted so that x1 <= x2 and y1 <= y2 */
  box: Box;
  /**
   * Character offsets [start, end) of the whole coordinate expression in the text, including its
   * brackets and box tags (`<|box_start|>…<|box_end|>`, `<box>…</box>`, the `<loc_N>` run), so a
   * renderer can replace exactly that span with a chip.
   */
  start: number;
  end: number;
}

/** A rectangle in original-image pixels (after EXIF orientation). Not rounded. */
export interface PixelRect {
  x: number;
  y: number;
  width: number;
  height: number;
}


// ---------------------------------------------------------------------------------------------
// Frames

/** Frame units -> model-input pixels along one axis of size `inputSize`. */
function frameToInput(v: number, inputSize: number, frame: BoxFrame): number {
  switch (frame) {
    case 'norm1':
      return v * inputSize;
    case 'norm1000':
      return (v / 1000) * inputSize;
    case 'input_pixels':
      return v;
    case 'loc_tokens':
      // Florence-2 quantises into 1000 bins and dequantises to the bin centre.
      return ((v + 0.5) / 1000) * inputSize;
  }
}

/** Model-input pixels -> frame units; `round` gives what the model itself would write. */
function inputToFrame(p: number, inputSize: number, frame: BoxFrame, round: boolean): number {
  switch (frame) {
    case 'norm1': {
      const v = clamp(p / inputSize, 0, 1);
      return round ? Math.round(v * 100) / 100 : v;
    }
    case 'norm1000': {
      const v = clamp((p / inputSize) * 1000, 0, 1000);
      return round ? Math.round(v) : v;
    }
    case 'input_pixels': {
      const v = clamp(p, 0, inputSize);
      return round ? Math.round(v) : v;
    }
    case 'loc_tokens': {
      const v = (p / inputSize) * 1000;
      // The bin is floor(v); the exact (unrounded) inverse of the bin-centre rule is v - 0.5.
      return round ? clamp(Math.floor(v), 0, 999) : clamp(v - 0.5, -0.5, 999.5);
    }
  }
}

/**
 * Values a frame can plausibly hold: anything far outside is not a box (a list of counts, a year),
 * while slightly-out-of-range values are kept and clamped later.
 */
function plausible(v: number, frame: BoxFrame): boolean {
  switch (frame) {
    case 'norm1':
      return v >= -0.5 && v <= 1.5;
    case 'norm1000':
      return v >= -500 && v <= 1500;
    case 'input_pixels':
      return v >= -1e5 && v <= 1e5;
    case 'loc_tokens':
      return v >= 0 && v <= 1e4;
  }
}

// ---------------------------------------------------------------------------------------------
// Mapping

/**
 * The part of the original image the model saw, in original pixels: the model input's window mapped
 * back (a centre crop cuts the sides off), within the image (padding is not image).
 */
export function visibleRegion(g: ImageGeometry): { left: number; top: number; right: number; bottom: number } {
  return {
    left: clamp(g.cropLeft / g.scaleX - g.padLeft, 0, g.originalWidth),
    top: clamp(g.cropTop / g.scaleY - g.padTop, 0, g.originalHeight),
    right: clamp((g.inputWidth + g.cropLeft) / g.scaleX - g.padLeft, 0, g.originalWidth),
    bottom: clamp((g.inputHeight + g.cropTop) / g.scaleY - g.padTop, 0, g.originalHeight),
  };
}

/**
 * A box in the model's frame -> a rectangle in original-image pixels, clamped to the region the model
 * saw (`visibleRegion`: the image, less what a centre crop cut off): a model cannot point at what it
 * was not shown, so an out-of-range value stops at the crop's edge, not at the image's.
 * A box that lies entirely in the padding (or outside a crop) collapses to zero width and/or
 * height at the nearest visible edge; callers drop rectangles with `isEmptyRect`.
 */
export function boxToImagePixels(box: Box, frame: BoxFrame, g: ImageGeometry): PixelRect {
  const seen = visibleRegion(g);
  const toX = (v: number) => clamp((frameToInput(v, g.inputWidth, frame) + g.cropLeft) / g.scaleX - g.padLeft, seen.left, seen.right);
  const toY = (v: number) => clamp((frameToInput(v, g.inputHeight, frame) + g.cropTop) / g.scaleY - g.padTop, seen.top, seen.bottom);
  const x1 = toX(Math.min(box[0], box[2]));
  const x2 = toX(Math.max(box[0], box[2]));
  const y1 = toY(Math.min(box[1], box[3]));
  const y2 = toY(Math.max(box[1], box[3]));
  return { x: x1, y: y1, width: x2 - x1, height: y2 - y1 };
}

export function isEmptyRect(r: PixelRect): boolean {
  return !(r.width > 0 && r.height > 0);
}

/**
 * The inverse: a rectangle in original-image pixels -> the box the model expects in a prompt
 * ("describe this region"). With `round` (default) the values are what the model writes itself:
 * 2 decimals for norm1, integers for the others (bins for loc_tokens). Values are clamped to the
 * frame's range, so a region outside a centre crop is cut to what the model can see.
 */
export function imagePixelsToModelFrame(
  rect: PixelRect,
  frame: BoxFrame,
  g: ImageGeometry,
  opts: { round?: boolean } = {},
): Box {
  const round = opts.round ?? true;
  const fx = (x: number) => inputToFrame((x + g.padLeft) * g.scaleX - g.cropLeft, g.inputWidth, frame, round);
  const fy = (y: number) => inputToFrame((y + g.padTop) * g.scaleY - g.cropTop, g.inputHeight, frame, round);
  return [fx(rect.x), fy(rect.y), fx(rect.x + rect.width), fy(rect.y + rect.height)];
}

// ---------------------------------------------------------------------------------------------
// Referring prompts

function fill(template: string, values: Record<string, string>): string {
  let out = template;
  // split/join, not String.replace: a phrase containing `$&` must stay literal.
  for (const [k, v] of Object.entries(values)) out = out.split(`{${k}}`).join(v);
  return out;
}

/** Formats frame values the way the model writes them (norm1: 2 decimals; others: integers). */
export function formatRegion(box: Box, frame: BoxFrame, template: string): string {
  const f = (v: number) => (frame === 'norm1' ? v.toFixed(2) : String(Math.round(v)));
  return fill(template, { x1: f(box[0]), y1: f(box[1]), x2: f(box[2]), y2: f(box[3]) });
}

export function findPrompt(prompts: ReferringPrompts, phrase: string): string {
  return fill(prompts.find, { phrase: phrase.trim() });
}

/** `box` is in the model's frame (see imagePixelsToModelFrame). */
export function describeRegionPrompt(prompts: ReferringPrompts, box: Box, frame: BoxFrame): string {
  return fill(prompts.describeRegion, { region: formatRegion(box, frame, prompts.region) });
}

// ---------------------------------------------------------------------------------------------
// Parsing

const NUMBER_TOKEN = /^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$/;
const NAN_TOKEN = /^(?:nan|null|none|undefined|[-+]?inf(?:inity)?)$/i;
/** innermost bracket groups: `[…]` or `(…)` with no brackets inside */
const LEAF = /[[(]([^[\]()]*)[\])]/g;
const LOC_RUN = /(?:<loc_\d+>)+/g;

interface Leaf {
  start: number;
  end: number;
  /** NaN where the model wrote nan/null */
  nums: number[];
}

/**
 * Finds every box in `text` written in `frame`. Never throws; skips what cannot be a box
 * (wrong count, NaN, far out of range, an unfinished box at the end of a streaming answer).
 */
export function parseBoxes(text: string, frame: BoxFrame): ParsedBox[] {
  try {
    return frame === 'loc_tokens' ? parseLocTokens(text) : parseBracketed(text, frame);
  } catch {
    return []; // defensive: model text must never break the caller
  }
}

function readLeaves(text: string): Leaf[] {
  const leaves: Leaf[] = [];
  for (const m of text.matchAll(LEAF)) {
    const inner = m[1].trim().replace(/,\s*$/, '');
    if (inner === '') continue;
    const tokens = inner.split(/[\s,]+/);
    if (!tokens.every((t) => NUMBER_TOKEN.test(t) || NAN_TOKEN.test(t))) continue;
    leaves.push({
      start: m.index,
      end: m.index + m[0].length,
      nums: tokens.map((t) => (NUMBER_TOKEN.test(t) ? Number(t) : Number.NaN)),
    });
  }
  return leaves;
}

function parseBracketed(text: string, frame: BoxFrame): ParsedBox[] {
  const leaves = readLeaves(text);
  const out: ParsedBox[] = [];
  let prevEnd = 0;
  for (let i = 0; i < leaves.length; i++) {
    const a = leaves[i];
    let nums: number[] | undefined;
    let start = a.start;
    let end = a.end;
    if (a.nums.length === 4) {
      nums = a.nums;
    } else if (a.nums.length === 2 && i + 1 < leaves.length && leaves[i + 1].nums.length === 2) {
      // two points: `(x1,y1),(x2,y2)` or `[[x1,y1],[x2,y2]]`
      const b = leaves[i + 1];
      if (/^[\s,]*$/.test(text.slice(a.end, b.start))) {
        nums = [...a.nums, ...b.nums];
        end = b.end;
        i++;
      }
    }
    if (!nums || !nums.every((v) => Number.isFinite(v) && plausible(v, frame))) {
      prevEnd = end; // a rejected number group still ends the previous label's text
      continue;
    }
    [start, end] = widenSpan(text, start, end);
    const box = sortBox(nums);
    const prev = out.at(-1);
    // `[[..],[..]]`: further boxes of one list share the label of the first
    const phrase =
      prev && prev.end === prevEnd && /^[\s,]*$/.test(text.slice(prevEnd, start))
        ? prev.phrase
        : phraseFor(text, start, end, prevEnd, leaves[i + 1]?.start ?? text.length);
    out.push({ phrase, box, start, end });
    prevEnd = end;
  }
  return out;
}

const OPEN_TAGS = ['<|box_start|>', '<box>'];
const CLOSE_TAGS = ['<|box_end|>', '</box>'];

/** Grows [start, end) over brackets that enclose only this box, then over box tags. */
function widenSpan(text: string, start: number, end: number): [number, number] {
  for (;;) {
    const s = skipSpaceBack(text, start);
    const e = skipSpaceFwd(text, end);
    if (s > 0 && '[('.includes(text[s - 1]) && e < text.length && '])'.includes(text[e])) {
      start = s - 1;
      end = e + 1;
      continue;
    }
    const tag = OPEN_TAGS.findIndex((t) => text.slice(0, s).endsWith(t));
    if (tag >= 0 && text.startsWith(CLOSE_TAGS[tag], e)) {
      start = s - OPEN_TAGS[tag].length;
      end = e + CLOSE_TAGS[tag].length;
      continue;
    }
    return [start, end];
  }
}

function parseLocTokens(text: string): ParsedBox[] {
  const out: ParsedBox[] = [];
  let prevEnd = 0;
  let prevPhrase = '';
  for (const m of text.matchAll(LOC_RUN)) {
    const runStart = m.index;
    const bins = [...m[0].matchAll(/<loc_(\d+)>/g)].map((b) => ({ v: Number(b[1]), at: runStart + b.index, len: b[0].length }));
    const between = text.slice(prevEnd, runStart);
    // Florence-2 writes `phrase<loc>×4` per box; several boxes for one phrase follow each other.
    let phrase = cleanPhrase(between);
    if (phrase === '' && between.replace(/<[^>]*>/g, '').trim() === '') phrase = prevPhrase;
    for (let k = 0; k + 4 <= bins.length; k += 4) {
      const q = bins.slice(k, k + 4);
      const start = q[0].at;
      const end = q[3].at + q[3].len;
      out.push({ phrase, box: sortBox(q.map((b) => b.v)), start, end });
    }
    prevEnd = runStart + m[0].length;
    prevPhrase = phrase;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Phrases

const LABEL_KEYS = ['label', 'phrase', 'name', 'object', 'category', 'text', 'description'];

/**
 * The label of the box at [start, end): object-ref tokens right before it, a JSON `label` in the
 * enclosing object, or the text before it on the same line/sentence (after the previous box),
 * else the text after it on the same line.
 */
function phraseFor(text: string, start: number, end: number, prevEnd: number, nextStart: number): string {
  // box-opening syntax that the span did not take (shared outer brackets of a list of boxes)
  const before = text.slice(prevEnd, start).replace(/(?:<\|box_start\|>|<box>|[\s[(])*$/, '');
  const ref = /(?:<\|object_ref_start\|>|<ref>)([^<]*)(?:<\|object_ref_end\|>|<\/ref>)$/.exec(before);
  if (ref) return cleanPhrase(ref[1]);

  const json = jsonLabel(text, start, end);
  if (json !== undefined) return json;

  const lineStart = Math.max(prevEnd, text.lastIndexOf('\n', start - 1) + 1);
  let head = text.slice(lineStart, start);
  const sentenceEnd = lastSentenceEnd(head);
  if (sentenceEnd >= 0) head = head.slice(sentenceEnd);
  const phrase = cleanPhrase(head);
  if (phrase !== '') return phrase;

  let lineEnd = text.indexOf('\n', end);
  if (lineEnd < 0) lineEnd = text.length;
  let tail = text.slice(end, Math.min(lineEnd, nextStart));
  const stop = /[.!?;](?:\s|$)/.exec(tail);
  if (stop) tail = tail.slice(0, stop.index);
  return cleanPhrase(tail);
}

/** The label in the JSON object around the box, '' for an object without one, undefined outside JSON. */
function jsonLabel(text: string, start: number, end: number): string | undefined {
  const open = text.lastIndexOf('{', start);
  if (open < 0 || text.slice(open, start).includes('}')) return undefined;
  const close = text.indexOf('}', end);
  const objText = text.slice(open, close < 0 ? text.length : close + 1);
  if (text.slice(end, close < 0 ? text.length : close).includes('{')) return undefined;
  for (const key of LABEL_KEYS) {
    const m = new RegExp(`"${key}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(objText);
    if (m) {
      try {
        return cleanPhrase(JSON.parse(`"${m[1]}"`) as string);
      } catch {
        return cleanPhrase(m[1]);
      }
    }
  }
  return /"\w+"\s*:/.test(objText) ? '' : undefined;
}

/** Index just after the last sentence end (`. `, `! `, `? `, `; `) in s, or -1. Decimals never match: they have no space after the point. */
function lastSentenceEnd(s: string): number {
  let at = -1;
  for (const m of s.matchAll(/[.!?;]\s+/g)) at = m.index + m[0].length;
  return at;
}

/** Trailing words that link a label to its box: verb, then a preposition and "the region" and the like. */
const LINKING_WORDS = new RegExp(
  String.raw`\s*(?:\b(?:is|are|was|were|can\s+be|could\s+be|appears?|seems?)\s+)?` +
    String.raw`(?:\b(?:located|found|positioned|shown|seen|visible|situated|placed|present|depicted)\s+)?` +
    String.raw`(?:\b(?:at|in|within|inside|around|near|with)\b(?:\s+(?:the\s+)?(?:(?:bounding\s+)?box|coordinates?|region|area|location|position)\b)?\s*)?` +
    String.raw`(?:\bis\b|\bare\b|=)?\s*$`,
  'i',
);

function cleanPhrase(s: string): string {
  let p = s
    .replace(/<[^>]*>/g, ' ') // special tokens, tags
    .replace(/[*_`]+/g, '') // markdown emphasis and code
    .replace(/^\s*(?:[-*+•]|\d+[.)])\s+/, '') // list markers
    .replace(/\s+/g, ' ')
    .trim();
  p = trimPunct(p).replace(/^(?:and|or|then)(?:\s+|$)/i, ''); // "…, and the dog [..]"
  // "The cat is at [..]" / "The cup is located in the region [..]" / "a dog can be seen at coordinates
  // [..]" / "x = [..]": the linking words are not the label
  p = p.replace(LINKING_WORDS, '');
  return trimPunct(p);
}

/** Separators around a label; quotes and brackets are kept (they may belong to the label). */
function trimPunct(s: string): string {
  return s.replace(/^[\s:;,.!?=>|~\-\u2013\u2014]+/, '').replace(/[\s:;,.!?=>|~\-\u2013\u2014]+$/, '');
}

// ---------------------------------------------------------------------------------------------
// Small helpers

function sortBox(n: number[]): Box {
  return [Math.min(n[0], n[2]), Math.min(n[1], n[3]), Math.max(n[0], n[2]), Math.max(n[1], n[3])];
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function skipSpaceBack(text: string, i: number): number {
  while (i > 0 && /\s/.test(text[i - 1])) i--;
  return i;
}

function skipSpaceFwd(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i])) i++;
  return i;
}
