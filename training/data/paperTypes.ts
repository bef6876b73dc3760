// The paper's three instruction types from one image's context (templates; llm.ts writes the same
// three through a language model): a multi-turn conversation, a detailed description and complex
// reasoning (LLaVA §3). Facts and words come from captions + boxes only.

import { classCounts, capital, listWords, type Context } from './context';
import { imageFacts, type Fact, type FactCategory } from './facts';
import { sample, type InstructSample } from './llavaFormat';
import { Rng } from './rng';
import { area, describeObject, imageRegion, numberWord, plural, referringPhrase, relation, whereIs } from './spatial';

/** Question wordings for a detailed description (same intent as the paper's list, our words). */
export const DETAIL_PROMPTS = [
  'Describe the image in detail.',
  'What do you see in this picture? Give a thorough description.',
  'Write a detailed description of this image.',
  'Explain everything that is shown in the image.',
  'Describe each shape in the image and where it is.',
  'Give an elaborate account of what this picture contains.',
];

/** 3-6 turns covering different categories first, then anything left. */
export function conversationSample(ctx: Context, rng: Rng): InstructSample {
  const facts = imageFacts(ctx, rng);
  const chosen: Fact[] = [];
  const seen = new Set<FactCategory>();
  for (const f of facts) if (!seen.has(f.category)) (seen.add(f.category), chosen.push(f));
  const turns = rng.int(3, 6);
  for (const f of facts) if (chosen.length < turns && !chosen.includes(f)) chosen.push(f);
  return sample(`${ctx.id}-conv`, ctx.image, rng.shuffle(chosen.slice(0, turns)).map((f) => [f.question, f.answer]));
}

export function detailText(ctx: Context): string {
  const n = ctx.objects.length;
  const bg = `${ctx.plain ? 'plain' : 'lightly speckled'} ${ctx.background} background`;
  const arrows = ctx.arrows ?? [];
  const lines = [
    ctx.arrows
      ? `The image shows a diagram of ${numberWord(n)} coloured boxes joined by ${arrows.length === 1 ? 'an arrow' : `${numberWord(arrows.length)} arrows`} on a ${bg}.`
      : `The image shows ${n === 1 ? 'a single shape' : `${numberWord(n)} shapes`} on a ${bg}.`,
  ];
  // read the objects top to bottom, then left to right, like a person scanning the picture
  const order = [...ctx.objects].sort((a, b) => a.box[1] + a.box[3] - (b.box[1] + b.box[3]) || a.box[0] - b.box[0]);
  for (const o of order) {
    const r = imageRegion(o, ctx.width, ctx.height);
    lines.push(`${capital(describeObject(o, true))} is ${whereIs(r.name)}.`);
  }
  for (const a of arrows) lines.push(`An arrow points from the ${ctx.objects[a.from].colour} box to the ${ctx.objects[a.to].colour} box.`);
  const counts = classCounts(ctx.objects);
  if (n > 1 && !ctx.arrows) lines.push(`In total there ${counts[0][1] === 1 ? 'is' : 'are'} ${counts.map(([c, k]) => `${numberWord(k)} ${plural(c, k)}`).join(', ').replace(/, ([^,]*)$/, ' and $1')}.`);
  const pair = firstRelatedPair(ctx);
  if (pair) lines.push(`${capital(pair[0])} is ${pair[2]} ${pair[1]}.`);
  return lines.join(' ');
}

export function detailSample(ctx: Context, rng: Rng): InstructSample {
  return sample(`${ctx.id}-detail`, ctx.image, [[rng.pick(DETAIL_PROMPTS), detailText(ctx)]]);
}

/** Questions whose answers take a step of reasoning over several objects; 1-2 per image. */
export function reasoningSample(ctx: Context, rng: Rng): InstructSample {
  const options = reasoningPairs(ctx, rng);
  return sample(`${ctx.id}-complex`, ctx.image, rng.sample(options, rng.int(1, Math.min(2, options.length))));
}

export function reasoningPairs(ctx: Context, rng: Rng): [string, string][] {
  const objs = ctx.objects;
  const n = objs.length;
  const out: [string, string][] = [];
  if (ctx.arrows?.length) out.push(followArrows(ctx, rng));
  // removal arithmetic
  const colour = rng.pick(objs).colour;
  const removed = objs.filter((o) => o.colour === colour).length;
  const left = n - removed;
  const removal =
    n === 1
      ? `The picture has a single shape, and it is ${colour}. Taking it out leaves no shapes.`
      : removed === n
        ? `All ${numberWord(n)} shapes in the picture are ${colour}, so taking them out leaves no shapes.`
        : `The picture has ${numberWord(n)} shapes, and ${numberWord(removed)} of them ${removed === 1 ? 'is' : 'are'} ${colour}. Taking ${removed === 1 ? 'it' : 'them'} out leaves ${numberWord(left)} ${plural('shape', left)}.`;
  out.push([`If every ${colour} shape were taken out of the picture, how many shapes would be left?`, removal]);
  // the largest object, when it is clearly the largest
  const bySize = [...objs].sort((a, b) => area(b) - area(a));
  if (n >= 2 && area(bySize[0]) >= 1.3 * area(bySize[1])) {
    const r = imageRegion(bySize[0], ctx.width, ctx.height);
    out.push([
      'Which shape takes up the most space, and where is it?',
      `${capital(describeObject(bySize[0], false)).replace(/^An? /, 'The ')} is the largest shape, clearly bigger than the others. It is ${whereIs(r.name)}.`,
    ]);
  }
  // left-to-right order, when no two boxes overlap horizontally
  const byX = [...objs].sort((a, b) => a.box[0] - b.box[0]);
  if (n >= 2 && n <= 4 && byX.every((o, i) => i === 0 || byX[i - 1].box[2] < o.box[0])) {
    out.push([
      'Name the shapes in order from left to right.',
      `Reading across the image from the left edge: ${byX.map((o) => `${o.colour} ${o.class}`).join(', then ')}. No two of them overlap horizontally, so the order is unambiguous.`,
    ]);
  }
  // comparison of two class counts
  const counts = classCounts(objs);
  if (counts.length >= 2) {
    const [[c1, k1], [c2, k2]] = rng.sample(counts, 2);
    const [p1, p2] = [plural(c1, 2), plural(c2, 2)];
    const verdict = k1 === k2 ? `No, there are as many ${p1} as ${p2}` : k1 > k2 ? `Yes, there are more ${p1}` : `No, there are fewer ${p1} than ${p2}`;
    out.push([`Are there more ${p1} than ${p2} in the image?`, `${verdict}: I count ${numberWord(k1)} ${plural(c1, k1)} and ${numberWord(k2)} ${plural(c2, k2)}.`]);
  }
  return out;
}

/** Diagrams: which boxes can be reached from one box by following arrows (breadth first). */
function followArrows(ctx: Context, rng: Rng): [string, string] {
  const arrows = ctx.arrows ?? [];
  const start = rng.pick([...new Set(arrows.map((a) => a.from))]);
  const colour = (i: number) => ctx.objects[i].colour;
  const reached: number[] = [];
  const queue = [start];
  while (queue.length) {
    const at = queue.shift()!;
    for (const a of arrows) if (a.from === at && !reached.includes(a.to)) (reached.push(a.to), queue.push(a.to));
  }
  const steps = arrows.filter((a) => a.from === start).map((a) => `the ${colour(a.to)} box`);
  const q = `Starting at the ${colour(start)} box and following the arrows, which boxes can you reach?`;
  const direct = `Arrows leave the ${colour(start)} box for ${listWords(steps)}`;
  const rest = reached.length > steps.length ? `, and from there the arrows lead on, so the boxes you can reach are the ${listWords(reached.map(colour))} ones.` : `, and no arrow leads further, so ${steps.length === 1 ? 'that is the only box' : 'those are the only boxes'} you can reach.`;
  return [q, `${direct}${rest}`];
}

/** The first two objects that unique phrases name and whose boxes are apart: [phrase a, phrase b, relation]. */
function firstRelatedPair(ctx: Context): [string, string, string] | undefined {
  const refs = ctx.objects.map((o) => referringPhrase(o, ctx.objects, ctx.width, ctx.height));
  for (let i = 0; i < ctx.objects.length; i++) {
    for (let j = 0; j < ctx.objects.length; j++) {
      const rel = i !== j ? relation(ctx.objects[i], ctx.objects[j]) : undefined;
      if (rel && refs[i] && refs[j]) return [refs[i]!, refs[j]!, rel];
    }
  }
  return undefined;
}
