// The paper's symbolic "context" of an image (LLaVA §3): a few short captions and every object's
// box, as text a language-only model can read. This is all the instruction data may see: the
// templates and the --llm path take a Context, never a Scene or pixels.

import { Rng } from './rng';
import type { ColourName, ObjectClass, PixelBox, Scene, SizeName } from './scene';
import { area, describeObject, imageRegion, numberWord, plural, relation, whereIs } from './spatial';

export interface ContextObject {
  class: ObjectClass;
  colour: ColourName;
  size: SizeName;
  /** [x1, y1, x2, y2] in image pixels */
  box: PixelBox;
}

export interface Context {
  id: string;
  /** path of the image relative to the data set's image folder */
  image: string;
  width: number;
  height: number;
  background: string;
  plain: boolean;
  captions: string[];
  objects: ContextObject[];
  /** diagrams only: arrows between objects (indices into `objects`) */
  arrows?: { from: number; to: number }[];
}

export function sceneContext(scene: Scene, image: string): Context {
  const objects = scene.objects.map((o) => ({ class: o.shape, colour: o.colour, size: o.size, box: o.box }));
  const base = { id: scene.id, image, width: scene.width, height: scene.height, background: scene.background.name, plain: scene.background.noise === 0 };
  const rng = new Rng(`${scene.id}:captions`);
  if (scene.kind === 'diagram') {
    const arrows = scene.arrows.map((a) => ({ from: a.from, to: a.to }));
    return { ...base, captions: diagramCaptions({ ...base, captions: [], objects, arrows }, rng), objects, arrows };
  }
  return { ...base, captions: captions({ ...base, captions: [], objects }, rng), objects };
}

/** Five captions of a diagram: what it is, one arrow, one located box, the colours, one relation. */
function diagramCaptions(ctx: Context, rng: Rng): string[] {
  const n = ctx.objects.length;
  const arrows = ctx.arrows ?? [];
  const bg = backgroundPhrase(ctx);
  const out = [`A diagram of ${numberWord(n)} coloured boxes joined by ${arrows.length === 1 ? 'an arrow' : `${numberWord(arrows.length)} arrows`} on ${bg}.`];
  const a = rng.pick(arrows);
  out.push(`An arrow points from the ${ctx.objects[a.from].colour} box to the ${ctx.objects[a.to].colour} box.`);
  const focus = rng.pick(ctx.objects);
  out.push(`${capital(describeObject(focus, true))} sits ${whereIs(imageRegion(focus, ctx.width, ctx.height).name).replace(/image$/, 'picture')}.`);
  out.push(`A flow chart with ${listWords(ctx.objects.map((o) => o.colour))} boxes.`);
  const pairs = ctx.objects.flatMap((x, i) => ctx.objects.flatMap((y, j) => (i !== j && relation(x, y) ? [[x, y] as const] : [])));
  const [x, y] = rng.pick(pairs) ?? [];
  out.push(x && y ? `The ${x.colour} box is ${relation(x, y)} the ${y.colour} box.` : 'A simple diagram of boxes and arrows.');
  return out;
}

export function listWords(words: readonly string[]): string {
  return words.join(', ').replace(/, ([^,]*)$/, ' and $1');
}

/** Five short captions in the style of COCO's: whole-image summary, count, one located object, classes, one relation. */
function captions(ctx: Context, rng: Rng): string[] {
  const n = ctx.objects.length;
  const bg = backgroundPhrase(ctx);
  const listed = ctx.objects.map((o) => describeObject(o, rng.chance(0.5))).join(', ').replace(/, ([^,]*)$/, ' and $1');
  const out = [`${capital(listed)} on ${bg}.`];
  out.push(n === 1 ? `A single shape on ${bg}.` : `${capital(numberWord(n))} coloured shapes on ${bg}.`);
  const focus = rng.pick(ctx.objects);
  const region = imageRegion(focus, ctx.width, ctx.height);
  out.push(`${capital(describeObject(focus, true))} sits ${whereIs(region.name).replace(/image$/, 'picture')}.`);
  const counts = classCounts(ctx.objects).map(([c, k]) => `${numberWord(k)} ${plural(c, k)}`);
  out.push(`There ${counts[0].startsWith('one ') ? 'is' : 'are'} ${counts.join(', ').replace(/, ([^,]*)$/, ' and $1')} in the image.`);
  const pairs = ctx.objects.flatMap((a, i) => ctx.objects.flatMap((b, j) => (i !== j && relation(a, b) ? [[a, b] as const] : [])));
  if (pairs.length) {
    const [a, b] = rng.pick(pairs);
    out.push(`${capital(describeObject(a, false))} is ${relation(a, b)} ${describeObject(b, false)}.`);
  } else {
    out.push(`A simple picture of ${n === 1 ? 'one shape' : `${numberWord(n)} shapes`}.`);
  }
  return out;
}

/**
 * The one caption a picture always gets (stage 2's captioning samples, `captions_lead.json`): what the image
 * alone decides, so a model can learn it. The brief captions above each pick a random object or form; a model
 * taught them for "caption this" wrote a sentence about some shape, seldom one that was there. Shapes: how many,
 * and the largest by box area (ties: the one further left). Diagrams: their first caption, already decided by
 * the picture.
 */
export function leadCaption(ctx: Context): string {
  if (ctx.arrows) return ctx.captions[0];
  const bg = backgroundPhrase(ctx);
  const big = largestObject(ctx.objects);
  const n = ctx.objects.length;
  return n === 1 ? `${capital(describeObject(big, false))} on ${bg}.` : `${capital(numberWord(n))} shapes on ${bg}, and the largest is ${describeObject(big, false)}.`;
}

/** The object of the largest box, ties going to the one further left: the one a lead caption names. */
export function largestObject<T extends Pick<ContextObject, 'box'>>(objects: readonly T[]): T {
  return objects.reduce((best, o) => (area(o) > area(best) || (area(o) === area(best) && o.box[0] < best.box[0]) ? o : best));
}

/** "a plain cream background", "a lightly speckled pale green background": every caption's words for it. */
function backgroundPhrase(ctx: Pick<Context, 'plain' | 'background'>): string {
  return `${ctx.plain ? 'a plain' : 'a lightly speckled'} ${ctx.background} background`;
}

/** [class, count] in first-appearance order */
export function classCounts(objects: readonly ContextObject[]): [ObjectClass, number][] {
  const m = new Map<ObjectClass, number>();
  for (const o of objects) m.set(o.class, (m.get(o.class) ?? 0) + 1);
  return [...m];
}

/** The context as the text the paper gives its language model: captions, then one box per line. */
export function contextText(ctx: Context): string {
  const boxes = ctx.objects.map((o) => `${o.size} ${o.colour} ${o.class}: [${o.box.join(', ')}]`);
  const arrows = (ctx.arrows ?? []).map((a) => `${ctx.objects[a.from].colour} box -> ${ctx.objects[a.to].colour} box`);
  const arrowText = arrows.length ? `\n\nArrows (from -> to):\n${arrows.join('\n')}` : '';
  return `Image size: ${ctx.width} x ${ctx.height} pixels.\nCaptions:\n${ctx.captions.join('\n')}\n\nObjects (class: [x1, y1, x2, y2] in pixels):\n${boxes.join('\n')}${arrowText}`;
}

export function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
