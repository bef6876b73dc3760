// The held-out evaluation set (committed in test/data/heldout/; 96 shape scenes + 16 diagrams; the training never sees it: its
// scenes come from the reserved split 'heldout', which generate.ts refuses). Files, read by `llava eval`:
//   problems.json + pid_splits.json     ScienceQA's layout (one multiple-choice problem per image)
//   images/test/<pid>/image.png|jpg     ScienceQA's image layout
//   short_answer.jsonl                  {question_id, image, text, answer, category, kind}
//   grounding.jsonl                     {question_id, image, phrase, text, box: [x1, y1, x2, y2] pixels, width, height}
//   bench.jsonl                         LLaVA-Bench style, for the judged score: {question_id, image, category: conv|detail|complex, text, answer, context}
//   contexts.jsonl                      the generator's context of each image (captions + boxes)
//   MANIFEST.json                       the command, seed, sharp/libvips versions and sha256 of every file above
// `npx tsx training/data/heldout.ts` rewrites it byte for byte (same sharp build); with `--count N --diagrams M --out DIR`
// it writes a larger set elsewhere (same split and seed), to tell training runs apart; with `--training --count N
// --out DIR`, the first N scenes the recipe trains on, asked the same way, to tell a model that has not learned a
// question from one that has learned it and does not carry it to new images.

import { createHash } from 'node:crypto';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import sharp from 'sharp';
import { contextText, type Context } from './context';
import { makeImage } from './dataset';
import { CATEGORIES, imageFacts, type Fact } from './facts';
import { choicesFor, groundingItems, groundingQuestion, shortAnswerQuestion } from './formats15';
import { GENERATE_DEFAULTS } from './generate';
import { DETAIL_PROMPTS, detailText, reasoningPairs } from './paperTypes';
import { Rng } from './rng';

/** 96 shape scenes (the targets are measured on them), then 16 diagrams (the stretch domain). */
export const HELDOUT = { split: 'heldout', seed: 20231, count: 96, diagrams: 16, minSide: 200, maxSide: 640 } as const;
export const DEFAULT_DIR = path.join(__dirname, '..', '..', 'test', 'data', 'heldout');
export const COMMAND = 'npx tsx training/data/heldout.ts';

export interface ScienceQaProblem {
  question: string;
  choices: string[];
  answer: number;
  hint: string;
  image: string;
  task: string;
  choice: string;
  grade: string;
  subject: string;
  topic: string;
  category: string;
  skill: string;
  lecture: string;
  solution: string;
  split: string;
}

export interface HeldoutItem {
  pid: string;
  imagePath: string;
  bytes: Buffer;
  context: Context;
  problem: ScienceQaProblem;
  shortAnswers: object[];
  grounding: object[];
  bench: object | undefined;
}

const BENCH_EVERY = 4; // one judged question per 4 images keeps the optional judged run short

/** Everything the set holds for image `index`, from its seed alone. */
/** How many shape scenes and diagrams a set holds (the committed one: HELDOUT's). */
export interface HeldoutSize {
  count: number;
  diagrams: number;
  /**
   * the training scenes instead of the reserved split: the first `count` images of the data set training/recipe.sh
   * generates (GENERATE_DEFAULTS), diagrams where its draw made them (`diagrams` is then 0)
   */
  training?: boolean;
}

export async function heldoutItem(index: number, size: HeldoutSize = HELDOUT): Promise<HeldoutItem> {
  let pid = '';
  const source = size.training ? GENERATE_DEFAULTS : { ...HELDOUT, diagramRate: index >= size.count ? 1 : 0 };
  const { context, bytes } = await makeImage(source.split, source.seed, index, source, (id, ext) => {
    pid = id;
    return `images/test/${id}/image.${ext}`;
  });
  const diagram = context.arrows !== undefined;
  const rng = new Rng(`${pid}:heldout`);
  const facts = imageFacts(context, rng);
  // the multiple-choice category cycles, so every category has about the same number of problems
  const wanted = diagram ? 'arrow' : CATEGORIES[index % CATEGORIES.length];
  const mc = facts.find((f) => f.category === wanted && f.distractors.length > 0) ?? facts.find((f) => f.distractors.length > 0)!;
  const c = choicesFor(mc, rng);
  const problem: ScienceQaProblem = {
    question: mc.question,
    choices: c.choices,
    answer: c.answer,
    hint: '',
    image: path.posix.basename(context.image),
    task: 'closed choice',
    choice: '',
    grade: '',
    subject: 'shapes',
    topic: mc.kind,
    category: mc.category,
    skill: mc.kind,
    lecture: '',
    solution: mc.answer,
    split: 'test',
  };
  // diagrams: an arrow question first, since the multiple-choice one is one already
  const rest = facts.filter((f) => f !== mc);
  const shortFacts = pickDistinctCategories(diagram ? [...rest.filter((f) => f.category === 'arrow'), ...rest.filter((f) => f.category !== 'arrow')] : rest, 3);
  const shortAnswers = shortFacts.map((f, k) => ({ question_id: `${pid}-short-${k}`, image: context.image, text: shortAnswerQuestion(f.question), answer: f.short, category: f.category, kind: f.kind }));
  const grounding = rng.sample(groundingItems(context), 2).map((g, k) => ({
    question_id: `${pid}-ground-${k}`,
    image: context.image,
    phrase: g.phrase,
    text: groundingQuestion(g.phrase),
    box: g.box,
    width: context.width,
    height: context.height,
  }));
  return { pid, imagePath: context.image, bytes, context, problem, shortAnswers, grounding, bench: index % BENCH_EVERY === 0 ? benchItem(context, index / BENCH_EVERY, facts, rng) : undefined };
}

function benchItem(ctx: Context, k: number, facts: Fact[], rng: Rng): object {
  const category = (['conv', 'detail', 'complex'] as const)[k % 3];
  let text: string;
  let answer: string;
  if (category === 'conv') [text, answer] = [facts[0].question, facts[0].answer];
  else if (category === 'detail') [text, answer] = [rng.pick(DETAIL_PROMPTS), detailText(ctx)];
  else [text, answer] = rng.pick(reasoningPairs(ctx, rng));
  return { question_id: `${ctx.id}-bench`, image: ctx.image, category, text, answer, context: contextText(ctx) };
}

function pickDistinctCategories(facts: Fact[], n: number): Fact[] {
  const out: Fact[] = [];
  for (const f of facts) if (out.length < n && !out.some((o) => o.category === f.category)) out.push(f);
  for (const f of facts) if (out.length < n && !out.includes(f)) out.push(f);
  return out;
}

export function jsonl(items: readonly object[]): string {
  return items.map((x) => JSON.stringify(x)).join('\n') + '\n';
}

/**
 * Writes a held-out set. A larger one than the committed (`size`; same split, seed and writer, so its first scenes
 * are the committed shape scenes) tells two training runs apart where 49 questions of a topic cannot.
 */
export async function writeHeldout(dir: string, size: HeldoutSize = HELDOUT): Promise<void> {
  await rm(path.join(dir, 'images'), { recursive: true, force: true });
  const items: HeldoutItem[] = [];
  for (let i = 0; i < size.count + size.diagrams; i++) items.push(await heldoutItem(i, size));
  const files = new Map<string, Buffer | string>();
  for (const it of items) files.set(it.imagePath, it.bytes);
  files.set('problems.json', JSON.stringify(Object.fromEntries(items.map((it) => [it.pid, it.problem])), null, 1) + '\n');
  files.set('pid_splits.json', JSON.stringify({ train: [], val: [], test: items.map((it) => it.pid) }, null, 1) + '\n');
  files.set('short_answer.jsonl', jsonl(items.flatMap((it) => it.shortAnswers)));
  files.set('grounding.jsonl', jsonl(items.flatMap((it) => it.grounding)));
  files.set('bench.jsonl', jsonl(items.flatMap((it) => (it.bench ? [it.bench] : []))));
  files.set('contexts.jsonl', jsonl(items.map((it) => it.context)));
  for (const [rel, data] of files) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), data);
  }
  const sha = (d: Buffer | string) => createHash('sha256').update(d).digest('hex');
  const manifest = {
    command: size.training
      ? `${COMMAND} --training --count ${size.count} --out DIR`
      : size.count === HELDOUT.count && size.diagrams === HELDOUT.diagrams
        ? COMMAND
        : `${COMMAND} --count ${size.count} --diagrams ${size.diagrams} --out DIR`,
    ...(size.training ? GENERATE_DEFAULTS : HELDOUT),
    count: size.count,
    diagrams: size.diagrams,
    sharp: sharp.versions.sharp,
    libvips: sharp.versions.vips,
    librsvg: sharp.versions.rsvg,
    files: Object.fromEntries([...files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([rel, d]) => [rel, sha(d)])),
  };
  await writeFile(path.join(dir, 'MANIFEST.json'), JSON.stringify(manifest, null, 1) + '\n');
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string', default: DEFAULT_DIR },
      count: { type: 'string', default: String(HELDOUT.count) },
      diagrams: { type: 'string' },
      training: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const training = values.training!;
  const size = { count: Number(values.count), diagrams: Number(values.diagrams ?? (training ? 0 : HELDOUT.diagrams)), training };
  if (![size.count, size.diagrams].every((n) => Number.isInteger(n) && n >= 0) || size.count + size.diagrams === 0) throw new Error('--count and --diagrams take whole numbers');
  if (training && size.diagrams > 0) throw new Error('--training takes no --diagrams: the training scenes are diagrams where the generator drew one');
  const committed = !training && size.count === HELDOUT.count && size.diagrams === HELDOUT.diagrams;
  if (!committed && path.resolve(values.out!) === path.resolve(DEFAULT_DIR)) throw new Error(`a set of another size goes elsewhere (--out DIR): ${DEFAULT_DIR} is the committed one`);
  await writeHeldout(values.out!, size);
  const images = (await readdir(path.join(values.out!, 'images', 'test'))).length;
  process.stdout.write(`${images} ${training ? 'training scenes' : 'held-out images'} in ${values.out}\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`heldout: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
