// Scene -> image bytes. The shapes are drawn as SVG (librsvg through sharp, anti-aliased) over a
// background drawn into raw pixels (plain, or light per-pixel noise from the scene's own seeded
// stream), then encoded as PNG or JPEG. Same scene, same sharp build -> same bytes: no timestamps or
// metadata are written (sharp drops them unless asked).

import sharp from 'sharp';
import { Rng } from './rng';
import type { Arrow, Scene, SceneObject } from './scene';

const JPEG_QUALITY = 90;

export function sceneSvg(scene: Scene): string {
  const shapes = scene.objects.map(shapeSvg).join('');
  const arrows = scene.arrows.map(arrowSvg).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${scene.width}" height="${scene.height}" viewBox="0 0 ${scene.width} ${scene.height}">${shapes}${arrows}</svg>`;
}

function shapeSvg(o: SceneObject): string {
  const fill = `#${o.fill.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
  if (o.circle) return `<circle cx="${o.circle.cx}" cy="${o.circle.cy}" r="${o.circle.r}" fill="${fill}"/>`;
  if (o.rect) {
    const [x1, y1, x2, y2] = o.box;
    return `<rect x="${x1}" y="${y1}" width="${x2 - x1}" height="${y2 - y1}" rx="${o.rect.rx}" fill="${fill}"/>`;
  }
  const pts = (o.points ?? []).map(([x, y]) => `${x},${y}`).join(' ');
  return `<polygon points="${pts}" fill="${fill}"/>`;
}

const ARROW_COLOUR = '#333333';

/** A dark line with a filled triangular head at `end`, sized to the line's length. */
function arrowSvg(a: Arrow): string {
  const [x1, y1] = a.start;
  const [x2, y2] = a.end;
  const len = Math.hypot(x2 - x1, y2 - y1) || 1;
  const head = Math.min(12, Math.max(5, len * 0.35));
  const [ux, uy] = [(x2 - x1) / len, (y2 - y1) / len];
  const [bx, by] = [x2 - ux * head, y2 - uy * head]; // where the head's base meets the line
  const w = head * 0.55;
  const pts = [[x2, y2], [bx - uy * w, by + ux * w], [bx + uy * w, by - ux * w]].map(([x, y]) => `${round2(x)},${round2(y)}`).join(' ');
  const width = Math.max(2, Math.round(head / 4));
  return `<line x1="${x1}" y1="${y1}" x2="${round2(bx)}" y2="${round2(by)}" stroke="${ARROW_COLOUR}" stroke-width="${width}"/><polygon points="${pts}" fill="${ARROW_COLOUR}"/>`;
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** [H, W, 3] u8: the background colour plus grey noise in [-noise, +noise] per pixel. */
export function backgroundPixels(scene: Scene): Buffer {
  const { width, height } = scene;
  const [r, g, b] = scene.background.rgb;
  const out = Buffer.alloc(width * height * 3);
  const amp = scene.background.noise;
  const rng = new Rng(`${scene.id}:noise`);
  for (let i = 0; i < width * height; i++) {
    const d = amp > 0 ? rng.int(-amp, amp) : 0;
    out[i * 3] = clamp(r + d);
    out[i * 3 + 1] = clamp(g + d);
    out[i * 3 + 2] = clamp(b + d);
  }
  return out;
}

export async function renderScene(scene: Scene): Promise<Buffer> {
  const img = sharp(backgroundPixels(scene), { raw: { width: scene.width, height: scene.height, channels: 3 } }).composite([
    { input: Buffer.from(sceneSvg(scene)), left: 0, top: 0 },
  ]);
  return scene.format === 'png'
    ? img.png({ compressionLevel: 9, adaptiveFiltering: false }).toBuffer()
    : img.jpeg({ quality: JPEG_QUALITY, chromaSubsampling: '4:4:4' }).toBuffer();
}

export function sceneExtension(scene: Scene): 'png' | 'jpg' {
  return scene.format === 'png' ? 'png' : 'jpg';
}

function clamp(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}
