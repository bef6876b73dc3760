// Words for objects and where they are, computed from boxes only: the image region of an object
// (thirds of the image), the relation between two objects (only when their boxes are clearly apart
// on that axis), and a referring expression that picks out exactly one object, or none.

import type { ContextObject } from './context';

export type Horizontal = 'left' | 'centre' | 'right';
export type Vertical = 'top' | 'middle' | 'bottom';

export interface ImageRegion {
  horizontal: Horizontal;
  vertical: Vertical;
  /** 'top left', 'top', 'left', 'centre', ... */
  name: string;
  /** the box centre is at least 4 % of the side away from every thirds line (a fair question) */
  clear: boolean;
}

const MARGIN = 0.04;

export function imageRegion(o: ContextObject, width: number, height: number): ImageRegion {
  const fx = (o.box[0] + o.box[2]) / 2 / width;
  const fy = (o.box[1] + o.box[3]) / 2 / height;
  const horizontal: Horizontal = fx < 1 / 3 ? 'left' : fx > 2 / 3 ? 'right' : 'centre';
  const vertical: Vertical = fy < 1 / 3 ? 'top' : fy > 2 / 3 ? 'bottom' : 'middle';
  const away = (f: number) => Math.abs(f - 1 / 3) >= MARGIN && Math.abs(f - 2 / 3) >= MARGIN;
  const parts = [vertical === 'middle' ? '' : vertical, horizontal === 'centre' ? '' : horizontal].filter(Boolean);
  return { horizontal, vertical, name: parts.length ? parts.join(' ') : 'centre', clear: away(fx) && away(fy) };
}

/** "in the top left of the image", "at the top of the image", "on the left of the image", "in the centre of the image" */
export function whereIs(regionName: string): string {
  return `${regionPreposition(regionName)} ${regionName} of the image`;
}

/** The preposition that goes with a region name: "at the top", "on the left", "in the top left". */
export function regionPreposition(regionName: string): string {
  return regionName === 'top' || regionName === 'bottom' ? 'at the' : regionName === 'left' || regionName === 'right' ? 'on the' : 'in the';
}

/** Which half of the image the object is in along each axis, when its whole box is in that half. */
export function imageHalves(o: ContextObject, width: number, height: number): { side?: 'left' | 'right'; end?: 'top' | 'bottom' } {
  return {
    side: o.box[2] <= width / 2 ? 'left' : o.box[0] >= width / 2 ? 'right' : undefined,
    end: o.box[3] <= height / 2 ? 'top' : o.box[1] >= height / 2 ? 'bottom' : undefined,
  };
}

export type Relation = 'to the left of' | 'to the right of' | 'above' | 'below';

/** How `a` lies relative to `b`, only when their boxes do not overlap on that axis (the larger gap wins). */
export function relation(a: ContextObject, b: ContextObject): Relation | undefined {
  const gx = a.box[2] < b.box[0] ? b.box[0] - a.box[2] : a.box[0] > b.box[2] ? a.box[0] - b.box[2] : -1;
  const gy = a.box[3] < b.box[1] ? b.box[1] - a.box[3] : a.box[1] > b.box[3] ? a.box[1] - b.box[3] : -1;
  if (gx < 0 && gy < 0) return undefined;
  if (gx >= gy) return a.box[2] < b.box[0] ? 'to the left of' : 'to the right of';
  return a.box[3] < b.box[1] ? 'above' : 'below';
}

/** Whether `a` is strictly on the given side of `b` (boxes apart on that axis). */
export function isRelated(a: ContextObject, b: ContextObject, r: Relation): boolean {
  switch (r) {
    case 'to the left of':
      return a.box[2] < b.box[0];
    case 'to the right of':
      return a.box[0] > b.box[2];
    case 'above':
      return a.box[3] < b.box[1];
    case 'below':
      return a.box[1] > b.box[3];
  }
}

/** "a red circle", "an orange star", with the size word when asked: "a small red circle". */
export function describeObject(o: ContextObject, withSize: boolean): string {
  const words = `${withSize ? `${o.size} ` : ''}${o.colour} ${o.class}`;
  return `${/^[aeiou]/.test(words) ? 'an' : 'a'} ${words}`;
}

/**
 * "the red circle", else "the large red circle", else "the red circle on the left" (region), or
 * undefined when no such phrase names exactly this object.
 */
export function referringPhrase(o: ContextObject, all: readonly ContextObject[], width: number, height: number): string | undefined {
  const same = all.filter((x) => x.class === o.class && x.colour === o.colour);
  if (same.length === 1) return `the ${o.colour} ${o.class}`;
  const sameSize = same.filter((x) => x.size === o.size);
  if (sameSize.length === 1) return `the ${o.size} ${o.colour} ${o.class}`;
  const region = imageRegion(o, width, height);
  if (region.clear && region.name !== 'centre' && same.filter((x) => imageRegion(x, width, height).name === region.name).length === 1) {
    return `the ${o.colour} ${o.class} ${regionPreposition(region.name)} ${region.name}`;
  }
  return undefined;
}

const NUMBER_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten'];

export function numberWord(n: number): string {
  return NUMBER_WORDS[n] ?? String(n);
}

export function plural(word: string, n: number): string {
  return n === 1 ? word : /(?:x|s|ch|sh)$/.test(word) ? `${word}es` : `${word}s`;
}

/** Box area in square pixels. */
export function area(o: Pick<ContextObject, 'box'>): number {
  return (o.box[2] - o.box[0]) * (o.box[3] - o.box[1]);
}
