// One training data set on disk: images, their contexts, and the instruction files of every format.
//   <out>/images/<id>.png|jpg          the scenes
//   <out>/contexts.jsonl               the paper's context per image (captions + boxes)
//   <out>/captions.json                stage 1 (feature alignment): image -> one short caption
//   <out>/conversation.json, detail.json, complex_reasoning.json   the paper's three types (LLaVA-Instruct)
//   <out>/llava_v1_5_mix.json          the three types + short answer, multiple choice, grounding, region
// Every sample is checked with formatProblem before anything is written.

import { mkdir, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { PRESET_PROMPTS } from '../../src/captioning/jobs';
import { largestObject, leadCaption, sceneContext, type Context } from './context';
import { multipleChoiceSample, multipleChoiceVqaSample, groundingSample, regionSample, shortAnswerSample, vqaSample, type AnswerCase } from './formats15';
import { formatProblem, sample, type InstructSample } from './llavaFormat';
import { llmSamples, type LlmOptions } from './llm';
import { conversationSample, detailSample, reasoningSample } from './paperTypes';
import { renderScene, sceneExtension } from './render';
import { Rng } from './rng';
import { makeScene, type SceneOptions } from './scene';
import { rewordSample } from './wordings';

/** Stage-1 prompts asking for a brief caption (same intent as the paper's list, our words). */
export const BRIEF_PROMPTS = [
  'Describe the image briefly.',
  'Give a short caption for this picture.',
  'Summarise what the image shows in a few words.',
  'Write a one-sentence description of the image.',
];

/** Prompts of the lead captions: the brief ones and the batch-captioning preset the product asks with. */
export const LEAD_PROMPTS = [...BRIEF_PROMPTS, PRESET_PROMPTS.short];

export interface DatasetOptions extends SceneOptions {
  out: string;
  count: number;
  seed: number;
  /** part of every scene's key and id: 'train' and 'heldout' never share a scene */
  split: string;
  llm?: LlmOptions;
  /** short answers' case (default 'capital', LLaVA-1.5's) */
  answerCase?: AnswerCase;
  /** put about half of the template questions in other wordings (wordings.ts; default off: one wording each) */
  wordings?: boolean;
  log?: (line: string) => void;
}

/** images rendered ahead of the one being written (writeDataset) */
const RENDER_AHEAD = 4;

export interface ImageRecord {
  context: Context;
  bytes: Buffer;
}

/** Scene `index` of a split: its id, the key its randomness comes from, image and context. */
export async function makeImage(split: string, seed: number, index: number, opts: SceneOptions, imagePath: (id: string, ext: string) => string): Promise<ImageRecord> {
  const id = `${split}-${String(index).padStart(6, '0')}`;
  const scene = makeScene(id, `${seed}:${split}:${index}`, opts);
  const bytes = await renderScene(scene);
  return { context: sceneContext(scene, imagePath(id, sceneExtension(scene))), bytes };
}

export interface TemplateSamples {
  caption: InstructSample;
  /** the caption the image alone decides (leadCaption), for stage 2 (captions_lead.json) */
  lead: InstructSample;
  conversation: InstructSample;
  detail: InstructSample;
  complex: InstructSample;
  formats15: InstructSample[];
  /** many short-answer questions per image, kept out of llava_v1_5_mix.json (vqa.json; stage 2's single-turn part) */
  vqa: InstructSample;
  /** many multiple-choice questions per image, likewise kept out of the mix (mcq.json) */
  mcq: InstructSample;
}

export function templateSamples(ctx: Context, answerCase: AnswerCase = 'capital'): TemplateSamples {
  const rng = new Rng(`${ctx.id}:instruct`);
  const caption = sample(`${ctx.id}-caption`, ctx.image, [[rng.pick(BRIEF_PROMPTS), rng.pick(ctx.captions)]]);
  const formats15 = [shortAnswerSample(ctx, rng, answerCase), multipleChoiceSample(ctx, rng), groundingSample(ctx, rng), regionSample(ctx, rng)].filter((s): s is InstructSample => !!s);
  // a shape scene's lead caption is about its largest object (trainer's --about-rows: the rows learn which one the
  // caption will name before its colour word is written); a diagram's is about the whole picture
  const about = ctx.arrows ? undefined : [[ctx.objects.indexOf(largestObject(ctx.objects))]];
  const lead = sample(`${ctx.id}-lead`, ctx.image, [[new Rng(`${ctx.id}:lead`).pick(LEAD_PROMPTS), leadCaption(ctx)]], about);
  return { caption, lead, conversation: conversationSample(ctx, rng), detail: detailSample(ctx, rng), complex: reasoningSample(ctx, rng), formats15, vqa: vqaSample(ctx, answerCase), mcq: multipleChoiceVqaSample(ctx) };
}

export async function writeDataset(opts: DatasetOptions): Promise<{ images: number; samples: number }> {
  const log = opts.log ?? (() => {});
  await mkdir(path.join(opts.out, 'images'), { recursive: true });
  const contexts: Context[] = [];
  const files: Record<string, InstructSample[]> = { captions: [], captions_lead: [], conversation: [], detail: [], complex_reasoning: [], llava_v1_5_mix: [], vqa: [], mcq: [] };
  // sharp rasterises and encodes on its own threads: keeping a few images in flight uses every core, and the
  // records are still taken in index order (each scene's randomness is keyed by its index: the same bytes)
  const inFlight: Promise<ImageRecord>[] = [];
  const render = (i: number) => {
    const p = makeImage(opts.split, opts.seed, i, opts, (id, ext) => `${id}.${ext}`);
    p.catch(() => {}); // awaited in order below; a failure ahead of that must not end the process as unhandled
    inFlight.push(p);
  };
  for (let i = 0; i < Math.min(RENDER_AHEAD, opts.count); i++) render(i);
  for (let i = 0; i < opts.count; i++) {
    const { context, bytes } = await inFlight.shift()!;
    if (i + RENDER_AHEAD < opts.count) render(i + RENDER_AHEAD);
    await writeFile(path.join(opts.out, 'images', context.image), bytes);
    contexts.push(context);
    const t = templateSamples(context, opts.answerCase);
    const paper = opts.llm ? await llmSamples(context, opts.llm) : [t.conversation, t.detail, t.complex];
    files.captions.push(t.caption);
    files.captions_lead.push(t.lead);
    files.conversation.push(paper[0]);
    files.detail.push(paper[1]);
    files.complex_reasoning.push(paper[2]);
    files.llava_v1_5_mix.push(...paper, ...t.formats15);
    files.vqa.push(t.vqa);
    files.mcq.push(t.mcq);
    if ((i + 1) % 100 === 0) log(`${i + 1}/${opts.count} images`);
  }
  if (opts.wordings) for (const name of Object.keys(files)) files[name] = files[name].map(rewordSample);
  for (const list of Object.values(files)) {
    for (const s of list) {
      const problem = formatProblem(s);
      if (problem) throw new Error(`generated sample breaks the LLaVA format: ${problem}`);
    }
  }
  await writeFile(path.join(opts.out, 'contexts.jsonl'), contexts.map((c) => JSON.stringify(c)).join('\n') + '\n');
  for (const [name, list] of Object.entries(files)) await writeFile(path.join(opts.out, `${name}.json`), jsonArray(list));
  return { images: contexts.length, samples: Object.values(files).reduce((n, l) => n + l.length, 0) };
}

/** A JSON array with one element per line: stable bytes, readable diffs. */
export function jsonArray(items: readonly unknown[]): string {
  return items.length ? `[\n${items.map((x) => JSON.stringify(x)).join(',\n')}\n]\n` : '[]\n';
}
