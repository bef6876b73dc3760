// Question-answer facts about one image, from its Context only (captions + boxes, never pixels):
// colour, shape, count, existence (with negatives), position in the image and relative to another
// object. Every instruction format (conversation, short answer, multiple choice, the held-out set)
// is built from these, so they all ask the same kinds of question with the same true answers.

import { classCounts, listWords, type Context, type ContextObject } from './context';
import { Rng } from './rng';
import { COLOURS, SHAPES, type ColourName, type ObjectClass } from './scene';
import { imageHalves, imageRegion, isRelated, numberWord, plural, referringPhrase, regionPreposition, whereIs, type Relation } from './spatial';

export const CATEGORIES = ['colour', 'shape', 'count', 'existence', 'position'] as const;
/** 'arrow': diagrams' questions about what points to what */
export type FactCategory = (typeof CATEGORIES)[number] | 'arrow';

export interface Fact {
  category: FactCategory;
  /** finer kind, e.g. 'position-image', 'position-relative', 'existence-negative' */
  kind: string;
  question: string;
  /** a full-sentence answer (conversation turns) */
  answer: string;
  /** a single word or phrase (short answer, multiple choice) */
  short: string;
  /** wrong answers of the same type, for multiple choice */
  distractors: string[];
  /** the objects the question is about (indices into the context's objects; none for an absent one): what the
   * trainer's --about-rows loss asks the decoder's image rows to mark */
  about: number[];
}

const RELATIONS: readonly Relation[] = ['to the left of', 'to the right of', 'above', 'below'];
const OPPOSITE: Record<Relation, Relation> = { 'to the left of': 'to the right of', 'to the right of': 'to the left of', above: 'below', below: 'above' };
const REGIONS = ['top left', 'top', 'top right', 'left', 'centre', 'right', 'bottom left', 'bottom', 'bottom right'];

/** Every fact the context supports, in a seeded order. */
export function imageFacts(ctx: Context, rng: Rng): Fact[] {
  const facts: Fact[] = [...colourFacts(ctx), ...shapeFacts(ctx), ...countFacts(ctx, rng), ...existenceFacts(ctx, rng), ...positionFacts(ctx, rng)];
  if (ctx.arrows) facts.push(...arrowFacts(ctx, rng));
  return rng.shuffle(facts);
}

/** A phrase for `o` that does not give away `hide` (its colour or its class), unique in the image. */
function phraseHiding(o: ContextObject, all: readonly ContextObject[], ctx: Context, hide: 'colour' | 'class'): string | undefined {
  const noun = hide === 'class' ? 'object' : o.class;
  const key = (x: ContextObject) => (hide === 'class' ? x.colour : x.class);
  const same = all.filter((x) => key(x) === key(o));
  const lead = hide === 'class' ? `${o.colour} ` : '';
  if (same.length === 1) return `the ${lead}${noun}`;
  if (same.filter((x) => x.size === o.size).length === 1) return `the ${o.size} ${lead}${noun}`;
  const r = imageRegion(o, ctx.width, ctx.height);
  if (r.clear && r.name !== 'centre' && same.filter((x) => imageRegion(x, ctx.width, ctx.height).name === r.name).length === 1) return `the ${lead}${noun} ${regionPreposition(r.name)} ${r.name}`;
  return undefined;
}

function colourFacts(ctx: Context): Fact[] {
  return ctx.objects.flatMap((o, i) => {
    const p = phraseHiding(o, ctx.objects, ctx, 'colour');
    if (!p) return [];
    return [{ category: 'colour', kind: 'colour', question: `What colour is ${p}?`, answer: `${cap(p)} is ${o.colour}.`, short: o.colour, distractors: COLOURS.filter((c) => c !== o.colour), about: [i] }];
  });
}

function shapeFacts(ctx: Context): Fact[] {
  return ctx.objects.flatMap((o, i) => {
    const p = phraseHiding(o, ctx.objects, ctx, 'class');
    if (!p) return [];
    return [{ category: 'shape', kind: 'shape', question: `What shape is ${p}?`, answer: `${cap(p)} is a ${o.class}.`, short: o.class, distractors: SHAPES.filter((s) => s !== o.class), about: [i] }];
  });
}

function countFacts(ctx: Context, rng: Rng): Fact[] {
  const n = ctx.objects.length;
  const nums = (k: number) => ['0', '1', '2', '3', '4', '5', '6'].filter((d) => d !== String(k));
  const facts: Fact[] = [
    { category: 'count', kind: 'count-all', question: 'How many shapes are there in the image?', answer: `There ${n === 1 ? 'is one shape' : `are ${numberWord(n)} shapes`} in the image.`, short: String(n), distractors: nums(n), about: indicesWhere(ctx, () => true) },
  ];
  const counts = new Map(classCounts(ctx.objects));
  const absent = SHAPES.filter((s) => !counts.has(s));
  const asked: ObjectClass[] = [...counts.keys(), ...(absent.length ? [rng.pick(absent)] : [])];
  for (const c of asked) {
    const k = counts.get(c) ?? 0;
    facts.push({ category: 'count', kind: 'count-class', question: `How many ${plural(c, 2)} are there?`, answer: k === 0 ? `There are no ${plural(c, 2)} in the image.` : `There ${k === 1 ? 'is' : 'are'} ${numberWord(k)} ${plural(c, k)}.`, short: String(k), distractors: nums(k), about: indicesWhere(ctx, (o) => o.class === c) });
  }
  const colours = new Map<ColourName, number>();
  for (const o of ctx.objects) colours.set(o.colour, (colours.get(o.colour) ?? 0) + 1);
  for (const [c, k] of colours) {
    if (k < 2 && !rng.chance(0.3)) continue;
    facts.push({ category: 'count', kind: 'count-colour', question: `How many ${c} shapes are in the picture?`, answer: `There ${k === 1 ? 'is' : 'are'} ${numberWord(k)} ${c} ${plural('shape', k)}.`, short: String(k), distractors: nums(k), about: indicesWhere(ctx, (o) => o.colour === c) });
  }
  return facts;
}

function existenceFacts(ctx: Context, rng: Rng): Fact[] {
  const has = (colour: string, cls: string) => ctx.objects.some((o) => o.colour === colour && o.class === cls);
  const facts: Fact[] = [];
  for (const o of rng.sample(ctx.objects, 2)) {
    const about = indicesWhere(ctx, (x) => x.colour === o.colour && x.class === o.class);
    facts.push(yesNo('existence', 'existence-positive', `Is there ${article(`${o.colour} ${o.class}`)} in the image?`, true, `Yes, there is ${article(`${o.colour} ${o.class}`)} in the image.`, about));
  }
  // hard negatives: a present class in an absent colour, a present colour on an absent class
  const negatives: [string, string][] = [];
  for (const o of ctx.objects) {
    const colour = rng.pick(COLOURS.filter((c) => !has(c, o.class)));
    if (colour) negatives.push([colour, o.class]);
    const cls = rng.pick(SHAPES.filter((s) => !has(o.colour, s)));
    if (cls) negatives.push([o.colour, cls]);
  }
  for (const [colour, cls] of rng.sample(negatives, 2)) {
    const same = ctx.objects.filter((o) => o.class === cls);
    const tail = same.length ? ` The ${plural(cls, same.length)} in the image ${same.length === 1 ? 'is' : 'are'} ${listWords(same.map((o) => o.colour))}.` : '';
    facts.push(yesNo('existence', 'existence-negative', `Is there ${article(`${colour} ${cls}`)} in the image?`, false, `No, there is no ${colour} ${cls} in the image.${tail}`, []));
  }
  return facts;
}

function positionFacts(ctx: Context, rng: Rng): Fact[] {
  const facts: Fact[] = [];
  const refs = ctx.objects.map((o) => referringPhrase(o, ctx.objects, ctx.width, ctx.height));
  ctx.objects.forEach((o, i) => {
    const ref = refs[i];
    if (!ref) return;
    const region = imageRegion(o, ctx.width, ctx.height);
    if (region.clear) {
      facts.push({ category: 'position', kind: 'position-image', question: `Where in the image is ${ref}?`, answer: `${cap(ref)} is ${whereIs(region.name)}.`, short: region.name, distractors: REGIONS.filter((r) => r !== region.name), about: [i] });
    }
    const halves = imageHalves(o, ctx.width, ctx.height);
    if (halves.side) facts.push({ category: 'position', kind: 'position-image', question: `Is ${ref} on the left or the right side of the image?`, answer: `${cap(ref)} is on the ${halves.side} side of the image.`, short: halves.side, distractors: [halves.side === 'left' ? 'right' : 'left'], about: [i] });
    if (halves.end) facts.push({ category: 'position', kind: 'position-image', question: `Is ${ref} in the top or the bottom half of the image?`, answer: `${cap(ref)} is in the ${halves.end} half of the image.`, short: halves.end, distractors: [halves.end === 'top' ? 'bottom' : 'top'], about: [i] });
  });
  // relative: a true relation, or its opposite (a false statement) half of the time
  for (let i = 0; i < ctx.objects.length; i++) {
    for (let j = 0; j < ctx.objects.length; j++) {
      if (i === j || !refs[i] || !refs[j]) continue;
      const rel = RELATIONS.find((r) => isRelated(ctx.objects[i], ctx.objects[j], r));
      if (!rel || !rng.chance(0.5)) continue;
      const asked = rng.chance(0.5) ? rel : OPPOSITE[rel];
      const truth = asked === rel;
      const a = refs[i]!;
      const b = refs[j]!;
      facts.push(yesNo('position', 'position-relative', `Is ${a} ${asked} ${b}?`, truth, truth ? `Yes, ${a} is ${asked} ${b}.` : `No, ${a} is ${rel} ${b}.`, [i, j]));
    }
  }
  return facts;
}

/** Diagrams: how many arrows, where an arrow leads, where one comes from, whether one joins two boxes. */
function arrowFacts(ctx: Context, rng: Rng): Fact[] {
  const arrows = ctx.arrows ?? [];
  const colour = (i: number) => ctx.objects[i].colour;
  const others = (c: string) => ctx.objects.map((o) => o.colour).filter((x) => x !== c);
  const m = arrows.length;
  const facts: Fact[] = [
    { category: 'arrow', kind: 'arrow-count', question: 'How many arrows are there in the diagram?', answer: `There ${m === 1 ? 'is one arrow' : `are ${numberWord(m)} arrows`} in the diagram.`, short: String(m), distractors: ['1', '2', '3', '4', '5'].filter((d) => d !== String(m)), about: [] },
  ];
  ctx.objects.forEach((_, i) => {
    const out = arrows.filter((a) => a.from === i);
    const into = arrows.filter((a) => a.to === i);
    if (out.length === 1) {
      const t = colour(out[0].to);
      facts.push({ category: 'arrow', kind: 'arrow-target', question: `Which box does the arrow from the ${colour(i)} box point to?`, answer: `The arrow from the ${colour(i)} box points to the ${t} box.`, short: t, distractors: others(t), about: [i, out[0].to] });
    }
    if (into.length === 1) {
      const f = colour(into[0].from);
      facts.push({ category: 'arrow', kind: 'arrow-source', question: `Which box has an arrow pointing to the ${colour(i)} box?`, answer: `The ${f} box has an arrow pointing to the ${colour(i)} box.`, short: f, distractors: others(f), about: [into[0].from, i] });
    }
  });
  for (const a of rng.sample(arrows, 2)) {
    const reversed = rng.chance(0.5);
    const [x, y] = reversed ? [a.to, a.from] : [a.from, a.to];
    facts.push(yesNo('arrow', 'arrow-link', `Is there an arrow from the ${colour(x)} box to the ${colour(y)} box?`, !reversed, reversed ? `No, the arrow goes the other way: from the ${colour(y)} box to the ${colour(x)} box.` : `Yes, an arrow points from the ${colour(x)} box to the ${colour(y)} box.`, [x, y]));
  }
  return facts;
}

function yesNo(category: FactCategory, kind: string, question: string, truth: boolean, answer: string, about: number[]): Fact {
  return { category, kind, question, answer, short: truth ? 'yes' : 'no', distractors: [truth ? 'no' : 'yes'], about };
}

function indicesWhere(ctx: Context, keep: (o: ContextObject) => boolean): number[] {
  return ctx.objects.flatMap((o, i) => (keep(o) ? [i] : []));
}

export function article(words: string): string {
  return `${/^[aeiou]/.test(words) ? 'an' : 'a'} ${words}`;
}

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}
