// The paper's judged relative score (LLaVA-Bench): a judge language model reads the image's
// symbolic context (captions + boxes), the question, the reference answer and the model's answer,
// and rates both 1-10; the relative score is the model's total over the reference's total x 100,
// per question category (conv / detail / complex) and overall. Any OpenAI-compatible endpoint.

import { JudgeError } from '../core';
import { readQuestions } from './dataFiles';

export interface BenchItem {
  id: string;
  image: string;
  category: string;
  text: string;
  /** the reference answer */
  answer: string;
  /** the image described in words: what the judge knows of it */
  context: string;
}

export function loadBench(file: string): Promise<BenchItem[]> {
  return readQuestions(file, (l) => ({ category: l.optStr('category') || 'all', answer: l.str('answer'), context: l.str('context') }));
}

export interface JudgeOptions {
  /** base URL, e.g. http://127.0.0.1:8000/v1 (…/chat/completions is appended) */
  url: string;
  model: string;
  apiKey?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
}

export const JUDGE_SYSTEM = 'You are an impartial, careful judge of answers to questions about an image.';

export function judgePrompt(item: Pick<BenchItem, 'context' | 'text' | 'answer'>, modelAnswer: string): string {
  return [
    `[Context]\n${item.context}`,
    `[Question]\n${item.text}`,
    `[Assistant 1]\n${item.answer}\n[End of Assistant 1]`,
    `[Assistant 2]\n${modelAnswer}\n[End of Assistant 2]`,
    '[Task]\nYou cannot see the image; the context above describes it exactly (captions, and every object with its box in pixels). ' +
      'Rate how helpful, relevant, accurate and detailed each assistant is, from 1 to 10 (higher is better). ' +
      "On the first line write only the two scores, Assistant 1's then Assistant 2's, separated by a space. " +
      'Then explain your ratings in a few sentences; neither the order of the answers nor their length should sway you.',
  ].join('\n\n');
}

/** The two scores on the judge's first line, or undefined when it does not hold exactly two numbers in 1..10. */
export function parseScores(review: string): [number, number] | undefined {
  const first = review.trim().split('\n')[0].replace(/,/g, ' ');
  const nums = first.split(/\s+/).filter(Boolean).map(Number);
  if (nums.length !== 2 || !nums.every((n) => Number.isFinite(n) && n >= 0 && n <= 10)) return undefined;
  return [nums[0], nums[1]];
}

export async function judgeReview(opts: JudgeOptions, item: BenchItem, modelAnswer: string): Promise<string> {
  const url = `${opts.url.replace(/\/+$/, '')}/chat/completions`;
  const signals = [AbortSignal.timeout(opts.timeoutMs ?? 120_000), ...(opts.signal ? [opts.signal] : [])];
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
      body: JSON.stringify({
        model: opts.model,
        temperature: 0.2,
        messages: [
          { role: 'system', content: JUDGE_SYSTEM },
          { role: 'user', content: judgePrompt(item, modelAnswer) },
        ],
      }),
      signal: AbortSignal.any(signals),
    });
  } catch (err) {
    throw new JudgeError(`${url}: ${(err as Error).message}`, { cause: err });
  }
  if (!res.ok) throw new JudgeError(`${url}: HTTP ${res.status}`);
  let json: { choices?: { message?: { content?: unknown } }[] };
  try {
    json = (await res.json()) as typeof json;
  } catch {
    throw new JudgeError(`${url}: the response is not JSON`);
  }
  const content = json.choices?.[0]?.message?.content;
  if (typeof content !== 'string') throw new JudgeError(`${url}: the response has no message content`);
  return content;
}

export interface JudgedScore {
  category: string;
  n: number;
  reference: number;
  model: number;
  /** model / reference x 100 */
  relative: number;
}

/** Mean scores and the relative score per category, then 'all'. Unparsed reviews are left out (and counted by the caller). */
export function relativeScores(rows: readonly { category: string; scores?: [number, number] }[]): JudgedScore[] {
  const scored = rows.filter((r) => r.scores);
  const cats = [...new Set(scored.map((r) => r.category))].sort();
  return [...cats, 'all'].flatMap((category) => {
    const sel = scored.filter((r) => category === 'all' || r.category === category);
    if (!sel.length) return [];
    const reference = sel.reduce((s, r) => s + r.scores![0], 0) / sel.length;
    const model = sel.reduce((s, r) => s + r.scores![1], 0) / sel.length;
    return [{ category, n: sel.length, reference, model, relative: reference > 0 ? (model / reference) * 100 : 0 }];
  });
}
