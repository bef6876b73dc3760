// Scene layout: 1-6 filled, non-overlapping shapes on a light background, everything decided by a
// seeded Rng before any pixel exists. A Scene carries what the renderer draws (vertices, fill RGB);
// the symbolic "context" the paper's data generation sees (captions, boxes) is derived from it in
// context.ts, and the instruction data never looks further than that context.

import { makeDiagram } from './diagram';
import { Rng } from './rng';

export const SHAPES = ['circle', 'square', 'triangle', 'star', 'hexagon'] as const;
export const COLOURS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'black', 'white'] as const;
export const SIZES = ['small', 'medium', 'large'] as const;
export type ShapeClass = (typeof SHAPES)[number];
/** what a scene object can be: a shape, or a diagram's box (diagram.ts) */
export type ObjectClass = ShapeClass | 'box';
export type ColourName = (typeof COLOURS)[number];
export type SizeName = (typeof SIZES)[number];

/** [x1, y1, x2, y2] in image pixels, x1 < x2, y1 < y2: the tight box of what is drawn (integers). */
export type PixelBox = [number, number, number, number];
export type Rgb = [number, number, number];

/** Canonical fill colours; each object jitters them a little so a name covers a small range. */
export const COLOUR_RGB: Record<ColourName, Rgb> = {
  red: [220, 30, 30],
  green: [40, 160, 60],
  blue: [35, 75, 215],
  yellow: [245, 210, 20],
  orange: [245, 130, 20],
  purple: [135, 50, 170],
  black: [20, 20, 20],
  white: [255, 255, 255],
};

/** Light backgrounds, darker than white (so a white shape still stands out) and named for captions. */
export const BACKGROUNDS: readonly { name: string; rgb: Rgb }[] = [
  { name: 'light grey', rgb: [214, 214, 214] },
  { name: 'cream', rgb: [228, 220, 196] },
  { name: 'pale blue', rgb: [200, 214, 232] },
  { name: 'pale green', rgb: [204, 226, 204] },
  { name: 'pale pink', rgb: [232, 208, 214] },
];

/** Largest side of a shape's box as a fraction of the image's shorter side. */
const SIZE_FRACTION: Record<SizeName, [number, number]> = {
  small: [0.1, 0.14],
  medium: [0.18, 0.24],
  large: [0.3, 0.38],
};

export interface SceneObject {
  shape: ObjectClass;
  colour: ColourName;
  size: SizeName;
  box: PixelBox;
  fill: Rgb;
  /** circle: centre and radius; polygons: vertices in drawing order; box: a rounded rectangle filling `box` */
  circle?: { cx: number; cy: number; r: number };
  rect?: { rx: number };
  points?: [number, number][];
}

/** A diagram's arrow from object `from` to object `to` (indices), drawn from `start` to `end` (the head). */
export interface Arrow {
  from: number;
  to: number;
  start: [number, number];
  end: [number, number];
}

export interface Scene {
  id: string;
  kind: 'shapes' | 'diagram';
  width: number;
  height: number;
  format: 'png' | 'jpeg';
  background: { name: string; rgb: Rgb; /** per-pixel noise amplitude (0 = plain) */ noise: number };
  objects: SceneObject[];
  /** diagrams only (empty for shapes) */
  arrows: Arrow[];
}

export interface SceneOptions {
  /** longest side range in pixels (default 200-1200) */
  minSide?: number;
  maxSide?: number;
  /** force the number of objects (default 1-6) */
  objectCount?: number;
  /** fraction of scenes that are diagrams (boxes joined by arrows) instead of shapes (default 0) */
  diagramRate?: number;
}

const GAP = 4; // pixels between any two boxes, and from the image border

/** The scene of `id`, fully determined by `key` (e.g. "train:123"). */
export function makeScene(id: string, key: string, opts: SceneOptions = {}): Scene {
  // a separate stream decides the kind, so shape scenes are the same with or without diagrams
  if (opts.diagramRate && new Rng(`${key}:kind`).chance(opts.diagramRate)) return makeDiagram(id, key, opts);
  const rng = new Rng(key);
  const base = canvas(rng, opts.minSide ?? 200, opts.maxSide ?? 1200);
  const wanted = opts.objectCount ?? rng.int(1, 6);
  const objects: SceneObject[] = [];
  for (let i = 0; i < wanted; i++) {
    const obj = placeObject(rng, base.width, base.height, objects);
    if (obj) objects.push(obj);
  }
  return { id, kind: 'shapes', ...base, objects, arrows: [] };
}

/** Width and height (aspect 1:2 to 2:1, log-uniform so wide and tall are equally likely), background and format. */
export function canvas(rng: Rng, minSide: number, maxSide: number): Pick<Scene, 'width' | 'height' | 'format' | 'background'> {
  const aspect = Math.exp(rng.range(Math.log(0.5), Math.log(2)));
  const longest = rng.int(minSide, maxSide);
  const width = aspect >= 1 ? longest : Math.max(minSide / 2, Math.round(longest * aspect));
  const height = aspect >= 1 ? Math.max(minSide / 2, Math.round(longest / aspect)) : longest;
  const bg = rng.pick(BACKGROUNDS);
  const noise = rng.chance(0.5) ? rng.int(4, 12) : 0;
  const format = rng.chance(noise > 0 ? 0.7 : 0.3) ? 'jpeg' : 'png';
  return { width, height, format, background: { ...bg, noise } };
}

function placeObject(rng: Rng, width: number, height: number, placed: SceneObject[]): SceneObject | undefined {
  const shape = rng.pick(SHAPES);
  const colour = rng.pick(COLOURS);
  const size = rng.pick(SIZES);
  const fill = jitter(rng, COLOUR_RGB[colour]);
  const [lo, hi] = SIZE_FRACTION[size];
  const extent = Math.round(Math.min(width, height) * rng.range(lo, hi));
  for (let attempt = 0; attempt < 200; attempt++) {
    const x = rng.int(GAP, width - GAP - extent);
    const y = rng.int(GAP, height - GAP - extent);
    const drawn = drawShape(shape, x, y, extent);
    const b = drawn.box;
    if (b[0] < GAP || b[1] < GAP || b[2] > width - GAP || b[3] > height - GAP) continue;
    if (placed.some((o) => boxesNear(o.box, b, GAP))) continue;
    return { shape, colour, size, fill, ...drawn };
  }
  return undefined; // no room left: the scene has fewer objects than asked
}

/** Geometry of one shape in the square [x, x+e] x [y, y+e]; the box is the vertices' extent, rounded outward. */
export function drawShape(shape: ShapeClass, x: number, y: number, e: number): Pick<SceneObject, 'box' | 'circle' | 'points'> {
  if (shape === 'circle') {
    const r = Math.floor(e / 2);
    const cx = x + r;
    const cy = y + r;
    return { circle: { cx, cy, r }, box: [cx - r, cy - r, cx + r, cy + r] };
  }
  let pts: [number, number][];
  const cx = x + e / 2;
  const cy = y + e / 2;
  switch (shape) {
    case 'square':
      pts = [[x, y], [x + e, y], [x + e, y + e], [x, y + e]];
      break;
    case 'triangle': {
      const h = (e * Math.sqrt(3)) / 2; // equilateral, pointing up, centred vertically
      const top = cy - h / 2;
      pts = [[cx, top], [x + e, top + h], [x, top + h]];
      break;
    }
    case 'hexagon': // flat top: width e, height e * sqrt(3) / 2
      pts = ringPoints(cx, cy, e / 2, e / 2, 6, 0);
      break;
    case 'star': // five points, one pointing up; inner radius 0.45 of the outer
      pts = starPoints(cx, cy, e / 2);
      break;
  }
  pts = pts.map(([px, py]) => [round2(px), round2(py)]);
  const xs = pts.map((p) => p[0]);
  const ys = pts.map((p) => p[1]);
  return { points: pts, box: [Math.floor(Math.min(...xs)), Math.floor(Math.min(...ys)), Math.ceil(Math.max(...xs)), Math.ceil(Math.max(...ys))] };
}

function ringPoints(cx: number, cy: number, rx: number, ry: number, n: number, startDeg: number): [number, number][] {
  return Array.from({ length: n }, (_, i) => {
    const a = ((startDeg + (360 / n) * i) * Math.PI) / 180;
    return [cx + rx * Math.cos(a), cy + ry * Math.sin(a)] as [number, number];
  });
}

function starPoints(cx: number, cy: number, r: number): [number, number][] {
  const pts: [number, number][] = [];
  for (let i = 0; i < 10; i++) {
    const rad = i % 2 === 0 ? r : r * 0.45;
    const a = ((-90 + 36 * i) * Math.PI) / 180;
    pts.push([cx + rad * Math.cos(a), cy + rad * Math.sin(a)]);
  }
  return pts;
}

export function boxesNear(a: PixelBox, b: PixelBox, gap: number): boolean {
  return a[0] < b[2] + gap && b[0] < a[2] + gap && a[1] < b[3] + gap && b[1] < a[3] + gap;
}

/** A colour name's RGB, each channel moved by up to 12 levels. */
export function jitter(rng: Rng, rgb: Rgb): Rgb {
  return rgb.map((c) => clampByte(c + rng.int(-12, 12))) as Rgb;
}

function clampByte(v: number): number {
  return Math.max(0, Math.min(255, v));
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}
