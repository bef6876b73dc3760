// `npx tsx training/captions.ts --model DIR [--data DIR] [--prompt TEXT] [--variant V]`: how much of a shapes
// model's captions is about the image. Each held-out shape scene (test/data/heldout by default; diagrams left out)
// is captioned with the batch-captioning preset, and the caption is read against the scene's own record
// (contexts.jsonl: every object's class and colour):
// - "colour [size] shape" phrases that name an object the scene has (each object counted once): precision, and
//   the same count over all objects: recall;
// - "<number> shapes" count words that are right.
// Prints one line and the first few captions beside the truth.

import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { parseVariantChoice } from '../src/core';
import { PRESET_PROMPTS } from '../src/captioning/jobs';
import { loadModel } from '../src/engine';
import { largestObject } from './data/context';
import type { PixelBox } from './data/scene';

const COLOURS = ['red', 'green', 'blue', 'yellow', 'orange', 'purple', 'black', 'white'];
const SHAPES = ['circle', 'square', 'triangle', 'star', 'hexagon'];
const NUMBERS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six'];
const PHRASE = new RegExp(`\\b(${COLOURS.join('|')})\\s+(?:(?:small|medium|large)\\s+)?(${SHAPES.join('|')})`, 'g');
const COUNT = new RegExp(`\\b(${NUMBERS.join('|')})\\s+(?:\\w+\\s+)?shapes?\\b`);

interface SceneObject {
  class: string;
  colour: string;
  box?: PixelBox;
}

const LARGEST = new RegExp(`\\blargest is an? (${COLOURS.join('|')})\\s+(?:(?:small|medium|large)\\s+)?(${SHAPES.join('|')})`);

/** What one caption gets right about one scene; `largest`: whether its "the largest is a ..." clause, when it has one, names the object of the largest box (ties: the one further left), as the lead captions do. */
export function scoreCaption(caption: string, objects: readonly SceneObject[]): { phrases: number; right: number; count?: boolean; largest?: boolean } {
  const used = new Set<number>();
  let phrases = 0;
  for (const [, colour, cls] of caption.toLowerCase().matchAll(PHRASE)) {
    phrases++;
    const k = objects.findIndex((o, i) => o.colour === colour && o.class === cls && !used.has(i));
    if (k >= 0) used.add(k);
  }
  const m = COUNT.exec(caption.toLowerCase());
  const l = LARGEST.exec(caption.toLowerCase());
  const boxed = objects.every((o) => o.box) ? (objects as (SceneObject & { box: PixelBox })[]) : [];
  const big = boxed.length ? largestObject(boxed) : undefined;
  return {
    phrases,
    right: used.size,
    ...(m ? { count: NUMBERS.indexOf(m[1]) === objects.length } : {}),
    ...(l && big ? { largest: l[1] === big.colour && l[2] === big.class } : {}),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { model: { type: 'string' }, data: { type: 'string' }, prompt: { type: 'string' }, variant: { type: 'string', default: 'fp32' } } });
  if (!values.model) throw new Error('usage: npx tsx training/captions.ts --model DIR [--data DIR] [--prompt TEXT] [--variant V]');
  const data = values.data ?? path.join(__dirname, '..', 'test', 'data', 'heldout');
  const prompt = values.prompt ?? PRESET_PROMPTS.short;
  const variant = parseVariantChoice(values.variant!);
  if ('error' in variant) throw new Error(variant.error);
  const scenes = readFileSync(path.join(data, 'contexts.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { image: string; objects?: SceneObject[] })
    .filter((c) => c.objects?.length && c.objects.every((o) => SHAPES.includes(o.class)));
  const model = await loadModel(values.model, { provider: 'cpu', variant: variant.choice });
  const total = { phrases: 0, right: 0, objects: 0, counted: 0, countRight: 0, largest: 0, largestRight: 0 };
  const shown: string[] = [];
  try {
    for (const scene of scenes) {
      let caption = '';
      for await (const ev of model.generate([{ role: 'user', text: prompt, images: [{ path: path.join(data, scene.image) }] }], { maxNewTokens: 48 })) {
        if (ev.type === 'done') caption = ev.text;
      }
      const s = scoreCaption(caption, scene.objects!);
      total.phrases += s.phrases;
      total.right += s.right;
      total.objects += scene.objects!.length;
      if (s.count !== undefined) {
        total.counted++;
        if (s.count) total.countRight++;
      }
      if (s.largest !== undefined) {
        total.largest++;
        if (s.largest) total.largestRight++;
      }
      if (shown.length < 4) shown.push(`  ${scene.objects!.map((o) => `${o.colour} ${o.class}`).join(', ')} => ${caption}`);
    }
  } finally {
    await model.dispose();
  }
  const pct = (a: number, b: number) => `${((100 * a) / Math.max(1, b)).toFixed(1)} %`;
  process.stdout.write(
    `${scenes.length} scenes, ${JSON.stringify(prompt)}: "colour shape" phrases right ${total.right} of ${total.phrases} (${pct(total.right, total.phrases)}), ` +
      `objects named ${total.right} of ${total.objects} (${pct(total.right, total.objects)}), count words right ${total.countRight} of ${total.counted}, ` +
      `"the largest is" right ${total.largestRight} of ${total.largest}\n${shown.join('\n')}\n`,
  );
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
