// ScienceQA-format multiple choice, as LLaVA evaluates it: problems.json (pid -> question, choices,
// answer index, hint, image, subject, grade, category, ...) and pid_splits.json (split -> pids),
// images at images/<split>/<pid>/<image>. The prompt is LLaVA-1.5's (context, question, lettered
// options, "Answer with the option's letter from the given choices directly."); the answer is the
// first option letter the model writes. Accuracy is reported the paper's way (subject, context
// modality, grade, average) and per category.

import * as path from 'node:path';
import { EvalDataError } from '../core';
import { dataPath, optStr, readJson, str } from './dataFiles';

export const MULTIPLE_CHOICE_PROMPT = "Answer with the option's letter from the given choices directly.";
const LETTERS = 'ABCDEFGHIJ';

export interface McItem {
  id: string;
  question: string;
  choices: string[];
  answer: number;
  hint: string;
  /** absolute path, or undefined for a text-only problem */
  image?: string;
  subject: string;
  grade: string;
  category: string;
}

export async function loadScienceQa(dir: string, split: string): Promise<McItem[]> {
  const problemsFile = path.join(dir, 'problems.json');
  const splitsFile = path.join(dir, 'pid_splits.json');
  const problems = await readJson(problemsFile);
  const splits = await readJson(splitsFile);
  if (typeof problems !== 'object' || problems === null || Array.isArray(problems)) throw new EvalDataError(problemsFile, 'expected an object of pid -> problem');
  const pids = (splits as Record<string, unknown>)?.[split];
  if (!Array.isArray(pids)) throw new EvalDataError(splitsFile, `has no "${split}" list`);
  return pids.map((pid) => {
    const p = (problems as Record<string, unknown>)[String(pid)];
    if (typeof p !== 'object' || p === null) throw new EvalDataError(problemsFile, `pid ${pid} (from ${path.basename(splitsFile)}) is missing`);
    const o = p as Record<string, unknown>;
    const where = `pid ${pid}`;
    const choices = o.choices;
    if (!Array.isArray(choices) || choices.length < 2 || choices.length > LETTERS.length || !choices.every((c) => typeof c === 'string')) {
      throw new EvalDataError(problemsFile, `${where}: "choices" must be 2-${LETTERS.length} strings`);
    }
    const answer = o.answer;
    if (!Number.isInteger(answer) || (answer as number) < 0 || (answer as number) >= choices.length) throw new EvalDataError(problemsFile, `${where}: "answer" must index "choices"`);
    const image = optStr(o, 'image');
    return {
      id: String(pid),
      question: str(o, 'question', problemsFile, where),
      choices: choices as string[],
      answer: answer as number,
      hint: optStr(o, 'hint'),
      image: image ? dataPath(dir, path.join('images', split, String(pid), image), problemsFile) : undefined,
      subject: optStr(o, 'subject'),
      grade: optStr(o, 'grade'),
      category: optStr(o, 'category'),
    };
  });
}

/** LLaVA-1.5's ScienceQA prompt. */
export function multipleChoicePrompt(item: Pick<McItem, 'question' | 'choices' | 'hint'>): string {
  const context = item.hint.trim() ? `Context: ${item.hint.trim()}\n` : '';
  return `${context}${item.question}\n${item.choices.map((c, i) => `${LETTERS[i]}. ${c}`).join('\n')}\n${MULTIPLE_CHOICE_PROMPT}`;
}

/**
 * The option an answer picks, the way LLaVA's ScienceQA scoring reads it: the letter alone ("B",
 * "B.", "(B)"), a letter opening "B. text", or "The answer is B"; failing those, the one option whose
 * text the answer is. Undefined when it names none (a sentence that merely starts with "A " is not
 * the letter A).
 */
export function parseChoice(answer: string, choices: readonly string[]): number | undefined {
  const text = answer.trim();
  const letters = LETTERS.slice(0, choices.length);
  const alone = new RegExp(`^\\(?([${letters}])\\)?\\.?$`).exec(text);
  if (alone) return letters.indexOf(alone[1]);
  const opening = new RegExp(`^([${letters}])\\. `).exec(text);
  if (opening) return letters.indexOf(opening[1]);
  const stated = new RegExp(`[Tt]he answer is \\(?([${letters}])\\)?(?![A-Za-z])`).exec(text);
  if (stated) return letters.indexOf(stated[1]);
  const norm = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, ' ').trim();
  const matches = choices.map((c, i) => (norm(c) === norm(text) ? i : -1)).filter((i) => i >= 0);
  return matches.length === 1 ? matches[0] : undefined;
}

export const LETTER_OF = (i: number) => LETTERS[i];

/** The paper's ScienceQA columns for one problem (those its fields support). */
export function paperGroups(item: McItem): string[] {
  const groups: string[] = [];
  const subject = { 'natural science': 'NAT', 'social science': 'SOC', 'language science': 'LAN' }[item.subject];
  if (subject) groups.push(`subject ${subject}`);
  // as ScienceQA's own scoring: a hint counts as text context, an image as image context (both can hold)
  if (item.hint.trim()) groups.push('context TXT');
  if (item.image) groups.push('context IMG');
  if (!item.hint.trim() && !item.image) groups.push('context NO');
  const grade = /^grade(\d+)$/.exec(item.grade);
  if (grade) groups.push(Number(grade[1]) <= 6 ? 'grade G1-6' : 'grade G7-12');
  if (item.category) groups.push(`category ${item.category}`);
  return groups;
}
