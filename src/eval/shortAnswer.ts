// Short-answer accuracy (LLaVA-1.5's "Answer the question using a single word or phrase."):
// normalised exact match, in the spirit of VQA's answer normalisation: case, punctuation, articles,
// number words -> digits, and the two spellings our domain meets (grey/gray, centre/center).

import { readQuestions } from './dataFiles';

export interface ShortItem {
  id: string;
  image: string;
  /** the question as sent, prompt suffix included */
  text: string;
  answer: string;
  category: string;
}

export function loadShortAnswers(file: string): Promise<ShortItem[]> {
  return readQuestions(file, (l) => ({ answer: l.str('answer'), category: l.optStr('category') }));
}

const NUMBERS: Record<string, string> = { none: '0', zero: '0', one: '1', two: '2', three: '3', four: '4', five: '5', six: '6', seven: '7', eight: '8', nine: '9', ten: '10' };
const SPELLINGS: Record<string, string> = { gray: 'grey', center: 'centre', color: 'colour' };
const ARTICLES = new Set(['a', 'an', 'the']);

export function normaliseAnswer(text: string): string {
  const words = text
    .toLowerCase()
    .replace(/(\d),(\d)/g, '$1$2') // 1,000 -> 1000
    .replace(/[^a-z0-9]+/g, ' ')
    .trim()
    .split(' ')
    .filter((w) => w && !ARTICLES.has(w))
    .map((w) => NUMBERS[w] ?? SPELLINGS[w] ?? w);
  return words.join(' ');
}

export function shortAnswerCorrect(prediction: string, answer: string): boolean {
  // only the first line counts: a model that rambles on after the answer is judged by its answer
  const first = prediction.trim().split('\n')[0];
  return normaliseAnswer(first) === normaliseAnswer(answer);
}
