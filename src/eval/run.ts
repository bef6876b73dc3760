// Runs the evaluation tasks over a data folder with one answerer (our engine, greedy) and collects
// every item's answer and score. A failing item (an image that does not decode) is recorded with a
// one-line error and scored wrong; cancelling stops the run.

import { existsSync } from 'node:fs';
import * as path from 'node:path';
import { AbortedError, EngineError, throwIfAborted, type BoxFrame, type ChatTurn, type ImageGeometry } from '../core';
import type { LlavaModel } from '../engine';
import { iou, loadGrounding, predictedBox, type PixelBox } from './boxScore';
import { judgeReview, loadBench, parseScores, relativeScores, type JudgedScore, type JudgeOptions } from './judge';
import { loadScienceQa, multipleChoicePrompt, paperGroups, parseChoice } from './scienceQa';
import { loadShortAnswers, shortAnswerCorrect } from './shortAnswer';

export const TASKS = ['scienceqa', 'short', 'grounding', 'judged'] as const;
export type EvalTask = (typeof TASKS)[number];

/** Where each task's data lives in a data folder. */
export const TASK_FILES: Record<EvalTask, string> = {
  scienceqa: 'problems.json',
  short: 'short_answer.jsonl',
  grounding: 'grounding.jsonl',
  judged: 'bench.jsonl',
};

export interface Answer {
  text: string;
  /** how the image became the model's input (grounding maps boxes back with it) */
  geometry?: ImageGeometry;
}

/** Anything that answers one question about one image (or none): our engine, or a test double. */
export interface Answerer {
  answer(image: string | undefined, question: string, opts: { maxNewTokens: number; signal?: AbortSignal }): Promise<Answer>;
}

/**
 * Greedy answers from a loaded model, one question per conversation; with `after`, each question is a follow-up:
 * `after` is asked first about the image, and the question comes after it and the model's own answer to it (how a
 * chat asks its second question).
 */
export function modelAnswerer(model: LlavaModel, opts: { after?: string } = {}): Answerer {
  const ask = async (turns: ChatTurn[], maxNewTokens: number, signal?: AbortSignal) => {
    for await (const ev of model.generate(turns, { maxNewTokens, signal })) {
      if (ev.type === 'done') return ev;
    }
    throw new Error('the model ended without an answer');
  };
  return {
    async answer(image, question, o) {
      const images = image ? [{ path: image }] : [];
      const turns: ChatTurn[] = [];
      if (opts.after !== undefined) {
        const first = await ask([{ role: 'user', text: opts.after, images }], 64, o.signal);
        turns.push({ role: 'user', text: opts.after, images }, { role: 'assistant', text: first.text }, { role: 'user', text: question });
      } else {
        turns.push({ role: 'user', text: question, images });
      }
      const done = await ask(turns, o.maxNewTokens, o.signal);
      return { text: done.text, geometry: done.images?.[0] };
    },
  };
}

export interface AccuracyRow {
  group: string;
  n: number;
  correct: number;
  /** percent */
  accuracy: number;
}

export interface EvalReport {
  data: string;
  scienceqa?: { rows: AccuracyRow[]; unparsed: number; errors: number; items: { id: string; answer: string; predicted?: number; truth: number; correct: boolean; error?: string }[] };
  short?: { rows: AccuracyRow[]; errors: number; items: { id: string; category: string; answer: string; truth: string; correct: boolean; error?: string }[] };
  grounding?: { n: number; hits: number; rate: number; meanIou: number; unparsed: number; errors: number; items: { id: string; answer: string; box?: PixelBox; truth: PixelBox; iou: number; error?: string }[] };
  judged?: { scores: JudgedScore[]; unparsed: number; errors: number; items: { id: string; category: string; answer: string; review?: string; scores?: [number, number]; error?: string }[] };
}

export interface EvalOptions {
  data: string;
  split?: string;
  tasks?: readonly EvalTask[];
  /** at most this many items per task (the first ones) */
  limit?: number;
  /** the model's box frame (its grounding spec) */
  frame: BoxFrame;
  judge?: JudgeOptions;
  /** new-token limit of open answers (judged task) */
  maxNewTokens?: number;
  signal?: AbortSignal;
  progress?: (task: EvalTask, done: number, total: number) => void;
}

/** The tasks a data folder has files for (the judged task also needs a judge endpoint). */
export function availableTasks(data: string, withJudge: boolean): EvalTask[] {
  return TASKS.filter((t) => existsSync(path.join(data, TASK_FILES[t])) && (t !== 'judged' || withJudge));
}

export async function runEval(answerer: Answerer, opts: EvalOptions): Promise<EvalReport> {
  const tasks = opts.tasks ?? availableTasks(opts.data, !!opts.judge);
  const report: EvalReport = { data: opts.data };
  const take = <T>(xs: T[]) => (opts.limit === undefined ? xs : xs.slice(0, opts.limit));
  const ask = async (image: string | undefined, question: string, maxNewTokens: number): Promise<Answer | { error: string }> => {
    throwIfAborted(opts.signal);
    try {
      return await answerer.answer(image, question, { maxNewTokens, signal: opts.signal });
    } catch (err) {
      if (err instanceof AbortedError || opts.signal?.aborted) throw err;
      const message = (err instanceof Error ? err.message : String(err)).split('\n')[0];
      return { error: err instanceof EngineError ? `${message} [${err.code}]` : message };
    }
  };

  if (tasks.includes('scienceqa')) {
    const items = take(await loadScienceQa(opts.data, opts.split ?? 'test'));
    const rows: { groups: string[]; correct: boolean }[] = [];
    const out: NonNullable<EvalReport['scienceqa']>['items'] = [];
    for (const [i, it] of items.entries()) {
      const a = await ask(it.image, multipleChoicePrompt(it), 8);
      const predicted = 'error' in a ? undefined : parseChoice(a.text, it.choices);
      const correct = predicted === it.answer;
      rows.push({ groups: paperGroups(it), correct });
      out.push({ id: it.id, answer: 'error' in a ? '' : a.text, predicted, truth: it.answer, correct, ...('error' in a ? { error: a.error } : {}) });
      opts.progress?.('scienceqa', i + 1, items.length);
    }
    report.scienceqa = { rows: accuracyRows(rows), unparsed: out.filter((o) => !o.error && o.predicted === undefined).length, errors: out.filter((o) => o.error).length, items: out };
  }

  if (tasks.includes('short')) {
    const items = take(await loadShortAnswers(path.join(opts.data, TASK_FILES.short)));
    const out: NonNullable<EvalReport['short']>['items'] = [];
    for (const [i, it] of items.entries()) {
      const a = await ask(it.image, it.text, 16);
      const answer = 'error' in a ? '' : a.text;
      out.push({ id: it.id, category: it.category, answer, truth: it.answer, correct: !('error' in a) && shortAnswerCorrect(answer, it.answer), ...('error' in a ? { error: a.error } : {}) });
      opts.progress?.('short', i + 1, items.length);
    }
    report.short = { rows: accuracyRows(out.map((o) => ({ groups: o.category ? [`category ${o.category}`] : [], correct: o.correct }))), errors: out.filter((o) => o.error).length, items: out };
  }

  if (tasks.includes('grounding')) {
    const items = take(await loadGrounding(path.join(opts.data, TASK_FILES.grounding)));
    const out: NonNullable<EvalReport['grounding']>['items'] = [];
    for (const [i, it] of items.entries()) {
      const a = await ask(it.image, it.text, 32);
      const box = 'error' in a || !a.geometry ? undefined : predictedBox(a.text, opts.frame, a.geometry);
      out.push({ id: it.id, answer: 'error' in a ? '' : a.text, box, truth: it.box, iou: box ? iou(box, it.box) : 0, ...('error' in a ? { error: a.error } : {}) });
      opts.progress?.('grounding', i + 1, items.length);
    }
    const hits = out.filter((o) => o.iou >= 0.5).length;
    report.grounding = {
      n: out.length,
      hits,
      rate: out.length ? (hits / out.length) * 100 : 0,
      meanIou: out.length ? out.reduce((s, o) => s + o.iou, 0) / out.length : 0,
      unparsed: out.filter((o) => !o.error && !o.box).length,
      errors: out.filter((o) => o.error).length,
      items: out,
    };
  }

  if (tasks.includes('judged')) {
    if (!opts.judge) throw new Error('the judged task needs a judge endpoint (--judge-url)');
    const items = take(await loadBench(path.join(opts.data, TASK_FILES.judged)));
    const out: NonNullable<EvalReport['judged']>['items'] = [];
    for (const [i, it] of items.entries()) {
      const a = await ask(it.image, it.text, opts.maxNewTokens ?? 256);
      if ('error' in a) {
        out.push({ id: it.id, category: it.category, answer: '', error: a.error });
      } else {
        const review = await judgeReview({ ...opts.judge, signal: opts.signal }, it, a.text.trim());
        out.push({ id: it.id, category: it.category, answer: a.text, review, scores: parseScores(review) });
      }
      opts.progress?.('judged', i + 1, items.length);
    }
    report.judged = { scores: relativeScores(out), unparsed: out.filter((o) => !o.error && !o.scores).length, errors: out.filter((o) => o.error).length, items: out };
  }
  return report;
}

/** One row per group (sorted), then 'average' over every item. */
export function accuracyRows(items: readonly { groups: string[]; correct: boolean }[]): AccuracyRow[] {
  const groups = [...new Set(items.flatMap((i) => i.groups))].sort();
  const row = (group: string, sel: readonly { correct: boolean }[]): AccuracyRow => {
    const correct = sel.filter((s) => s.correct).length;
    return { group, n: sel.length, correct, accuracy: sel.length ? (correct / sel.length) * 100 : 0 };
  };
  return [...groups.map((g) => row(g, items.filter((i) => i.groups.includes(g)))), row('average', items)];
}
