// Other wordings of the generated questions (`generate.ts --wordings`). facts.ts writes each fact's question from
// one template, and a model taught them answers only those words: AA and H1 (training/README.md, thirty-first
// session) answered 91 of 102 held-out "How many shapes are there in the image?" right, and asked "How many shapes
// can you see?", 5 and 8. The paper's questions came from GPT-4 in free wording; these rules give each template a
// few others that ask the same thing with the same answer words (a short answer stays right as written).

import type { InstructSample } from './llavaFormat';
import { Rng } from './rng';

type Wording = (...parts: string[]) => string;

/** [a template's whole line, its other wordings from the line's captured parts]; the first rule that matches wins. */
const RULES: readonly (readonly [RegExp, readonly Wording[]])[] = [
  [/^How many shapes are there in the image\?$/, [() => 'How many shapes are there?', () => 'How many shapes are in the picture?', () => 'How many objects are there in the image?', () => 'How many shapes can you see?', () => 'Count the shapes in the image.']],
  [/^How many (\w+) are there\?$/, [(c) => `How many ${c} are in the image?`, (c) => `How many ${c} can you see?`, (c) => `How many ${c} does the picture have?`]],
  [/^How many (\w+) shapes are in the picture\?$/, [(c) => `How many ${c} shapes are there?`, (c) => `How many ${c} objects are in the image?`, (c) => `How many shapes are ${c}?`]],
  [/^What colour is (.+)\?$/, [(p) => `What is the colour of ${p}?`, (p) => `What color is ${p}?`, (p) => `Which colour is ${p}?`]],
  [/^What shape is (.+)\?$/, [(p) => `What kind of shape is ${p}?`, (p) => `Which shape is ${p}?`, (p) => `What is the shape of ${p}?`]],
  [/^Is there (an? .+) in the image\?$/, [(p) => `Is there ${p}?`, (p) => `Does the image contain ${p}?`, (p) => `Can you see ${p} in the picture?`]],
  [/^Where in the image is (.+)\?$/, [(p) => `Where is ${p}?`, (p) => `In which part of the image is ${p}?`, (p) => `Where is ${p} in the picture?`]],
  [/^Is (.+) on the left or the right side of the image\?$/, [(p) => `Is ${p} on the left or on the right?`, (p) => `Is ${p} on the left side or the right side?`]],
  [/^Is (.+) in the top or the bottom half of the image\?$/, [(p) => `Is ${p} at the top or at the bottom?`, (p) => `Is ${p} in the top half or the bottom half?`]],
  // a referring phrase never holds a relation's words (spatial.ts referringPhrase), so the first one splits the two
  [/^Is (the .+?) (to the left of|to the right of|above|below) (the .+)\?$/, [(a, r, b) => `Is it true that ${a} is ${r} ${b}?`, (a, r, b) => `Would you say ${a} is ${r} ${b}?`]],
];

/** The other wordings of one question line (none when no template matches it). */
export function wordingsOf(line: string): string[] {
  for (const [re, alternatives] of RULES) {
    const m = re.exec(line);
    if (m) return alternatives.map((w) => w(...m.slice(1)));
  }
  return [];
}

/**
 * The sample with each human turn's template question kept half of the time and otherwise put in one of its other
 * wordings, drawn from the sample's own stream (`${id}:wording`): the same sample always gets the same words, and
 * the data's other random draws do not move. Answers, ids and `about` are unchanged.
 */
export function rewordSample(s: InstructSample): InstructSample {
  const rng = new Rng(`${s.id}:wording`);
  let changed = false;
  const conversations = s.conversations.map((t) => {
    if (t.from !== 'human') return t;
    const value = t.value
      .split('\n')
      .map((line) => {
        const others = wordingsOf(line);
        if (!others.length || rng.next() < 0.5) return line;
        changed = true;
        return rng.pick(others);
      })
      .join('\n');
    return value === t.value ? t : { ...t, value };
  });
  return changed ? { ...s, conversations } : s;
}
