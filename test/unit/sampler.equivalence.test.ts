// The sampler sorts only likely candidates (and selects top-k without sorting everything). Its picks
// must equal the textbook procedure that sorts the whole vocabulary, written out here independently:
// HF order (temperature, top-k, top-p, draw), stable order by logit descending.
//
//   node --import tsx --test test/unit/sampler.equivalence.test.ts

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Sampler, seededRandom } from '../../src/engine/sampler';

function referencePick(logits: Float32Array, temperature: number, topK: number, topP: number, u: number): number {
  let order = Array.from(logits.keys()).sort((a, b) => (logits[b] > logits[a] ? 1 : logits[b] < logits[a] ? -1 : a - b));
  if (topK > 0 && topK < order.length) order = order.slice(0, topK);
  const probs = order.map((i) => Math.exp((logits[i] - logits[order[0]]) / temperature));
  const sum = probs.reduce((a, b) => a + b, 0);
  let keep = order.length;
  if (topP < 1) {
    let mass = 0;
    for (let i = 0; i < order.length; i++) {
      mass += probs[i] / sum;
      if (mass >= topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let r = u * probs.slice(0, keep).reduce((a, b) => a + b, 0);
  for (let i = 0; i < keep; i++) {
    r -= probs[i];
    if (r <= 0) return order[i];
  }
  return order[keep - 1];
}

/** Logit rows of different shapes: peaked (a real LM), flat (a random fixture), exact ties, -0, a long tail. */
function rows(vocab: number, seed: number): Float32Array[] {
  const rnd = seededRandom(seed);
  const peaked = Float32Array.from({ length: vocab }, () => rnd() * 6 + (rnd() < 0.002 ? 12 : 0));
  const flat = Float32Array.from({ length: vocab }, () => rnd() * 0.1);
  const ties = Float32Array.from({ length: vocab }, () => Math.round(rnd() * 4));
  const zeros = Float32Array.from({ length: vocab }, (_, i) => (i % 3 === 0 ? -0 : i % 3 === 1 ? 0 : -5));
  // one clear favourite over a long tail whose tokens are each unlikely but together likely
  const longTail = Float32Array.from({ length: vocab }, (_, i) => (i === 7 ? 10 : rnd() * 0.5));
  return [peaked, flat, ties, zeros, longTail];
}

const SETTINGS = [
  { temperature: 0.7 },
  { temperature: 1.3, topK: 40 },
  { temperature: 0.5, topP: 0.9 },
  { temperature: 1, topK: 200, topP: 0.8 },
  { temperature: 2, topP: 0.3 },
  // at temperature 1 every long-tail token weighs e^-10..e^-9.5 < 1e-4: draws land in the unsorted tail
  { temperature: 1 },
  { temperature: 1, topP: 0.95 },
];

test('picks equal a full-vocabulary sort, draw for draw', () => {
  let compared = 0;
  const distinct = new Set<number>();
  for (const vocab of [50, 5000, 40000]) {
    for (const [r, row] of rows(vocab, vocab).entries()) {
      for (const opts of SETTINGS) {
        const seed = 1000 * r + vocab;
        const sampler = new Sampler({ ...opts, seed });
        const draws = seededRandom(seed); // the sampler draws exactly one number per token from the same PRNG
        for (let n = 0; n < 12; n++) {
          const u = draws();
          const expected = referencePick(row, opts.temperature, opts.topK ?? 0, opts.topP ?? 1, u);
          const got = sampler.sample(Float32Array.from(row), []);
          assert.equal(got, expected, `vocab ${vocab}, row ${r}, ${JSON.stringify(opts)}, draw ${n}`);
          distinct.add(got);
          compared++;
        }
      }
    }
  }
  assert.ok(compared === 3 * 5 * SETTINGS.length * 12);
  assert.ok(distinct.size > 50, 'the draws should spread over many tokens');
});
