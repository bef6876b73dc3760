// The LLaVA-Instruct JSON shape (one file holds an array of samples) and its rules, checked the same
// way by the generator before writing and by the tests after: `<image>\n` opens the first human turn
// and appears nowhere else; turns alternate human, gpt; no empty values.

export interface Turn {
  from: 'human' | 'gpt';
  value: string;
}

export interface InstructSample {
  id: string;
  /** image path relative to the data set's image folder */
  image: string;
  conversations: Turn[];
  /** our own addition, ignored by LLaVA's loaders: per question, the context objects it is about (indices;
   * facts.ts `about`), which the trainer's --about-rows loss reads */
  about?: number[][];
}

export const IMAGE_TOKEN = '<image>';

/** Turns from question/answer pairs; the first question gets the image placeholder. */
export function sample(id: string, image: string, pairs: readonly [string, string][], about?: number[][]): InstructSample {
  const conversations: Turn[] = pairs.flatMap(([q, a], i) => [
    { from: 'human' as const, value: i === 0 ? `${IMAGE_TOKEN}\n${q}` : q },
    { from: 'gpt' as const, value: a },
  ]);
  if (about && about.length !== pairs.length) throw new Error(`${id}: ${about.length} \`about\` lists for ${pairs.length} questions`);
  return about ? { id, image, conversations, about } : { id, image, conversations };
}

/** Problems with one sample, '' when it follows the format. */
export function formatProblem(s: unknown): string {
  if (typeof s !== 'object' || s === null) return 'not an object';
  const o = s as Record<string, unknown>;
  if (typeof o.id !== 'string' || !o.id) return 'id must be a non-empty string';
  if (typeof o.image !== 'string' || !o.image) return `${o.id}: image must be a non-empty string`;
  if (!Array.isArray(o.conversations) || o.conversations.length < 2 || o.conversations.length % 2) return `${o.id}: conversations must hold human/gpt pairs`;
  let images = 0;
  for (const [i, t] of (o.conversations as unknown[]).entries()) {
    const turn = t as Record<string, unknown>;
    const want = i % 2 === 0 ? 'human' : 'gpt';
    if (turn?.from !== want) return `${o.id}: turn ${i} must be from ${want}`;
    if (typeof turn.value !== 'string' || !turn.value.trim()) return `${o.id}: turn ${i} has no text`;
    images += turn.value.split(IMAGE_TOKEN).length - 1;
  }
  const first = (o.conversations as Turn[])[0].value;
  if (images !== 1 || !first.startsWith(`${IMAGE_TOKEN}\n`)) return `${o.id}: ${IMAGE_TOKEN} must appear exactly once, opening the first human turn`;
  return '';
}
