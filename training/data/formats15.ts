// LLaVA-1.5's task formats from one image's context: short answer (VQA-style), multiple choice
// (ScienceQA-style), grounding (referring expression -> box) and region description (box -> short
// description). Prompts are the paper's; boxes are in the padded-square frame (frame.ts).

import type { Context } from './context';
import { imageFacts, type Fact } from './facts';
import { boxAnswer } from './frame';
import { sample, type InstructSample } from './llavaFormat';
import { Rng } from './rng';
import { referringPhrase, describeObject } from './spatial';
import { DEFAULT_GROUNDING, describeRegionPrompt, findPrompt, imagePixelsToModelFrame } from '../../src/grounding';
import { paddedSquareGeometry } from './frame';

export const SHORT_ANSWER_PROMPT = 'Answer the question using a single word or phrase.';
export const MULTIPLE_CHOICE_PROMPT = "Answer with the option's letter from the given choices directly.";
export const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F'];

export function shortAnswerQuestion(question: string): string {
  return `${question}\n${SHORT_ANSWER_PROMPT}`;
}

/** How short answers are written: 'capital' as LLaVA-1.5's VQA data ("Red"), 'lower' as the options read ("red"). */
export type AnswerCase = 'capital' | 'lower';

/**
 * "Yes" / "Red" / "2": the short answer as LLaVA-1.5's VQA data writes it; `lower` keeps the fact's own case, the
 * case multiple-choice options are written in, so that an answer and the option holding it are one token.
 */
export function shortAnswerText(f: Fact, answerCase: AnswerCase = 'capital'): string {
  return answerCase === 'lower' ? f.short : f.short.charAt(0).toUpperCase() + f.short.slice(1);
}

export function shortAnswerSample(ctx: Context, rng: Rng, answerCase: AnswerCase = 'capital'): InstructSample {
  const facts = imageFacts(ctx, rng).slice(0, rng.int(2, 4));
  return sample(`${ctx.id}-short`, ctx.image, facts.map((f) => [shortAnswerQuestion(f.question), shortAnswerText(f, answerCase)]), facts.map((f) => f.about));
}

/**
 * VQA-style data (LLaVA-1.5 mixes VQAv2 and GQA in with this prompt): up to `max` of the image's facts as
 * short-answer turns, from its own random stream, so adding it changes no other sample.
 */
export function vqaSample(ctx: Context, answerCase: AnswerCase = 'capital', max = 12): InstructSample {
  const facts = imageFacts(ctx, new Rng(`${ctx.id}:vqa`)).slice(0, max);
  return sample(`${ctx.id}-vqa`, ctx.image, facts.map((f) => [shortAnswerQuestion(f.question), shortAnswerText(f, answerCase)]), facts.map((f) => f.about));
}

export interface Choice {
  choices: string[];
  /** index of the right one */
  answer: number;
}

/** 2-4 options (yes/no questions keep 2), the right one at a seeded place. A fact without distractors cannot be one. */
export function choicesFor(f: Fact, rng: Rng): Choice {
  if (!f.distractors.length) throw new Error(`no wrong answers to offer for "${f.question}"`);
  const wrong = rng.sample(f.distractors, rng.int(1, 3));
  const choices = rng.shuffle([f.short, ...wrong]);
  return { choices, answer: choices.indexOf(f.short) };
}

/** The question as LLaVA-1.5 feeds ScienceQA: options one per line as "A. ...", then the instruction. */
export function multipleChoiceQuestion(question: string, choices: readonly string[], hint = ''): string {
  const context = hint ? `Context: ${hint}\n` : '';
  return `${context}${question}\n${choices.map((c, i) => `${LETTERS[i]}. ${c}`).join('\n')}\n${MULTIPLE_CHOICE_PROMPT}`;
}

/**
 * Many multiple-choice questions per image (mcq.json), as vqa.json gives short answers: up to `max` of the
 * image's facts that have wrong answers to offer, each with its own options, from its own random stream. The
 * mix's one multiple-choice question per image is memorised long before the option-letter step is learnt.
 */
export function multipleChoiceVqaSample(ctx: Context, max = 8): InstructSample {
  const rng = new Rng(`${ctx.id}:mcq`);
  const facts = imageFacts(ctx, rng).filter((x) => x.distractors.length > 0).slice(0, max);
  return sample(`${ctx.id}-mcq`, ctx.image, facts.map((f) => {
    const c = choicesFor(f, rng);
    return [multipleChoiceQuestion(f.question, c.choices), LETTERS[c.answer]] as [string, string];
  }), facts.map((f) => f.about));
}

export function multipleChoiceSample(ctx: Context, rng: Rng): InstructSample {
  const f = rng.pick(imageFacts(ctx, rng).filter((x) => x.distractors.length > 0));
  const c = choicesFor(f, rng);
  return sample(`${ctx.id}-mc`, ctx.image, [[multipleChoiceQuestion(f.question, c.choices), LETTERS[c.answer]]], [f.about]);
}

export interface GroundingItem {
  phrase: string;
  box: Context['objects'][number]['box'];
  /** the object's index in the context */
  index: number;
}

/** Objects a phrase names uniquely, with that phrase. */
export function groundingItems(ctx: Context): GroundingItem[] {
  return ctx.objects.flatMap((o, index) => {
    const phrase = referringPhrase(o, ctx.objects, ctx.width, ctx.height);
    return phrase ? [{ phrase, box: o.box, index }] : [];
  });
}

export function groundingQuestion(phrase: string): string {
  return findPrompt(DEFAULT_GROUNDING.prompts, phrase);
}

export function groundingSample(ctx: Context, rng: Rng): InstructSample | undefined {
  const items = rng.sample(groundingItems(ctx), rng.int(1, 3));
  if (!items.length) return undefined;
  return sample(`${ctx.id}-ground`, ctx.image, items.map((it) => [groundingQuestion(it.phrase), boxAnswer(it.box, ctx.width, ctx.height)]), items.map((it) => [it.index]));
}

export function regionSample(ctx: Context, rng: Rng): InstructSample {
  const g = paddedSquareGeometry(ctx.width, ctx.height);
  const objs = rng.sample(ctx.objects, rng.int(1, Math.min(3, ctx.objects.length)));
  return sample(
    `${ctx.id}-region`,
    ctx.image,
    objs.map((o) => {
      const framed = imagePixelsToModelFrame({ x: o.box[0], y: o.box[1], width: o.box[2] - o.box[0], height: o.box[3] - o.box[1] }, 'norm1', g);
      const d = describeObject(o, true);
      return [describeRegionPrompt(DEFAULT_GROUNDING.prompts, framed, 'norm1'), `${d.charAt(0).toUpperCase()}${d.slice(1)}.`] as [string, string];
    }),
    objs.map((o) => [ctx.objects.indexOf(o)]),
  );
}
