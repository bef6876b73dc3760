// `npx tsx training/data/samples.ts`: the sample images of the shapes domain in media/samples/ (what
// `npm run demo`, the README screenshots and the tests ask the built-in model about), each with its context
// (captions + true boxes) beside it as <name>.json. Scenes come from the reserved split 'samples' (never in a
// training set: generate.ts refuses it); the first scenes of that split that fit each wish are taken.

import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { makeImage } from './dataset';
import type { Context } from './context';

export const SAMPLES_SPLIT = 'samples';
const OUT = path.join(__dirname, '..', '..', 'media', 'samples');

interface Wish {
  name: string;
  format: 'png' | 'jpg';
  ok: (c: Context) => boolean;
}

const WISHES: Wish[] = [
  // the demo image: landscape, 3-4 shapes of different colours and classes, big enough to show in a README
  { name: 'shapes', format: 'png', ok: (c) => c.width > c.height * 1.2 && c.width >= 480 && c.objects.length >= 3 && c.objects.length <= 4 && distinct(c) },
  { name: 'shapes-tall', format: 'jpg', ok: (c) => c.height > c.width * 1.2 && c.objects.length >= 2 && c.objects.length <= 3 && distinct(c) },
];

/** A demo image's true record (media/samples/NAME.json, written beside NAME.png or NAME.jpg by this script). */
export function readSampleContext(image: string): Context {
  return JSON.parse(readFileSync(path.join(OUT, image.replace(/\.\w+$/, '.json')), 'utf8')) as Context;
}

function distinct(c: Context): boolean {
  return new Set(c.objects.map((o) => o.colour)).size === c.objects.length && new Set(c.objects.map((o) => o.class)).size === c.objects.length;
}

async function main(): Promise<void> {
  let index = 0;
  for (const wish of WISHES) {
    for (;; index++) {
      const { context, bytes } = await makeImage(SAMPLES_SPLIT, 0, index, { minSide: 320, maxSide: 720, diagramRate: 0 }, (id, ext) => `${id}.${ext}`);
      if (!context.image.endsWith(`.${wish.format}`) || !wish.ok(context)) continue;
      await writeFile(path.join(OUT, `${wish.name}.${wish.format}`), bytes);
      await writeFile(path.join(OUT, `${wish.name}.json`), JSON.stringify({ ...context, image: `${wish.name}.${wish.format}` }, null, 2) + '\n');
      process.stdout.write(`${wish.name}.${wish.format}: ${context.id}, ${context.width}x${context.height}, ${context.captions[0]}\n`);
      index++;
      break;
    }
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
