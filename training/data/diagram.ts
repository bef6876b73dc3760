// Diagram scenes (the stretch domain): 2-5 coloured boxes (rounded rectangles, each colour
// once) on a grid, joined by arrows. Boxes sit in distinct grid cells and arrows join only cells
// that are neighbours in a row or a column, so no arrow crosses a third box; the arrows form a tree
// grown from a random first cell, each pointing from the box placed earlier to the one placed later.

import { Rng } from './rng';
import { canvas, COLOUR_RGB, COLOURS, jitter, SIZES, type Arrow, type Scene, type SceneObject, type SizeName } from './scene';

/** Box side as a fraction of its grid cell, per size word. */
const BOX_FRACTION: Record<SizeName, [number, number]> = { small: [0.3, 0.38], medium: [0.42, 0.5], large: [0.54, 0.6] };
/** Diagrams need room for arrows between boxes: their longest side is at least this. */
const MIN_SIDE = 300;
const ARROW_GAP = 5; // pixels between an arrow's ends and the boxes it joins

export function makeDiagram(id: string, key: string, opts: { minSide?: number; maxSide?: number } = {}): Scene {
  const rng = new Rng(`${key}:diagram`);
  const base = canvas(rng, Math.max(MIN_SIDE, opts.minSide ?? 200), Math.max(MIN_SIDE, opts.maxSide ?? 1200));
  const wide = base.width >= base.height;
  const [cols, rows] = wide ? [3, 2] : [2, 3];
  const n = rng.int(2, 5);
  // grow a connected set of cells; each new cell's arrow comes from a chosen neighbour
  const cells: [number, number][] = [[rng.int(0, cols - 1), rng.int(0, rows - 1)]];
  const links: [number, number][] = [];
  while (cells.length < n) {
    const options: [number, [number, number]][] = [];
    cells.forEach(([c, r], i) => {
      for (const [dc, dr] of [[1, 0], [-1, 0], [0, 1], [0, -1]]) {
        const next: [number, number] = [c + dc, r + dr];
        if (next[0] < 0 || next[0] >= cols || next[1] < 0 || next[1] >= rows) continue;
        if (cells.some(([x, y]) => x === next[0] && y === next[1]) || options.some(([, [x, y]]) => x === next[0] && y === next[1])) continue;
        options.push([i, next]);
      }
    });
    const [from, cell] = rng.pick(options);
    cells.push(cell);
    links.push([from, cells.length - 1]);
  }
  const cw = base.width / cols;
  const ch = base.height / rows;
  const colours = rng.sample(COLOURS, n);
  const objects: SceneObject[] = cells.map(([c, r], i) => {
    const size = rng.pick(SIZES);
    const [lo, hi] = BOX_FRACTION[size];
    const w = Math.round(cw * rng.range(lo, hi));
    const h = Math.round(ch * rng.range(lo, hi));
    // centred in the cell, nudged by at most 5 % of it: neighbours stay at least 30 % of a cell apart
    const x1 = Math.round(c * cw + (cw - w) / 2 + rng.range(-0.05, 0.05) * cw);
    const y1 = Math.round(r * ch + (ch - h) / 2 + rng.range(-0.05, 0.05) * ch);
    return { shape: 'box', colour: colours[i], size, fill: jitter(rng, COLOUR_RGB[colours[i]]), box: [x1, y1, x1 + w, y1 + h], rect: { rx: Math.max(2, Math.round(Math.min(w, h) * 0.12)) } };
  });
  const arrows: Arrow[] = links.map(([from, to]) => ({ from, to, ...arrowEnds(objects[from].box, objects[to].box) }));
  return { id, kind: 'diagram', ...base, objects, arrows };
}

/** From the side of box a facing b to the side of b facing a, through the middle of their overlap (or of the gap). */
function arrowEnds(a: SceneObject['box'], b: SceneObject['box']): Pick<Arrow, 'start' | 'end'> {
  const horizontal = a[2] <= b[0] || b[2] <= a[0];
  if (horizontal) {
    const y = Math.round((Math.max(a[1], b[1]) + Math.min(a[3], b[3])) / 2);
    const ya = overlap(a[1], a[3], b[1], b[3]) ? y : Math.round((a[1] + a[3]) / 2);
    const yb = overlap(a[1], a[3], b[1], b[3]) ? y : Math.round((b[1] + b[3]) / 2);
    return a[2] <= b[0] ? { start: [a[2] + ARROW_GAP, ya], end: [b[0] - ARROW_GAP, yb] } : { start: [a[0] - ARROW_GAP, ya], end: [b[2] + ARROW_GAP, yb] };
  }
  const x = Math.round((Math.max(a[0], b[0]) + Math.min(a[2], b[2])) / 2);
  const xa = overlap(a[0], a[2], b[0], b[2]) ? x : Math.round((a[0] + a[2]) / 2);
  const xb = overlap(a[0], a[2], b[0], b[2]) ? x : Math.round((b[0] + b[2]) / 2);
  return a[3] <= b[1] ? { start: [xa, a[3] + ARROW_GAP], end: [xb, b[1] - ARROW_GAP] } : { start: [xa, a[1] - ARROW_GAP], end: [xb, b[3] + ARROW_GAP] };
}

function overlap(a1: number, a2: number, b1: number, b2: number): boolean {
  return Math.min(a2, b2) - Math.max(a1, b1) > 4;
}
