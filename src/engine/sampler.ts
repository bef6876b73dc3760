// Next-token selection from one row of logits. The order of the transforms follows Hugging Face's
// generate(): repetition penalty, temperature, top-k, top-p, then a draw. With temperature 0 (or
// unset) it is greedy: the first index of the maximum, as torch.argmax picks it.

import type { SamplingOptions } from './types';

/** mulberry32: a small seeded PRNG; identical seeds give identical samples on every platform. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function argmax(logits: ArrayLike<number>): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    if (logits[i] > bestValue) {
      bestValue = logits[i];
      best = i;
    }
  }
  return best;
}

/** HF's RepetitionPenaltyLogitsProcessor: divide positive logits, multiply negative ones, once per distinct token. */
export function applyRepetitionPenalty(logits: Float32Array, previous: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  const seen = new Set<number>();
  for (const id of previous) {
    if (seen.has(id) || id < 0 || id >= logits.length) continue;
    seen.add(id);
    logits[id] = logits[id] > 0 ? logits[id] / penalty : logits[id] * penalty;
  }
}

export class Sampler {
  private readonly random: () => number;
  readonly greedy: boolean;

  constructor(private readonly opts: SamplingOptions = {}) {
    this.greedy = !opts.temperature || opts.temperature <= 0;
    this.random = seededRandom(opts.seed ?? 0);
  }

  /** `logits` [vocab] f32 is modified in place. `previous`: prompt and generated ids, for the penalty. */
  sample(logits: Float32Array, previous: Iterable<number>): number {
    const penalty = this.opts.repetitionPenalty ?? 1;
    applyRepetitionPenalty(logits, previous, penalty);
    if (this.greedy) return argmax(logits);

    const temperature = this.opts.temperature!;
    // Candidates sorted by logit, descending; top-k cuts the list before the softmax.
    let order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a]);
    const topK = this.opts.topK ?? 0;
    if (topK > 0 && topK < order.length) order = order.slice(0, topK);

    const maxLogit = logits[order[0]];
    const probs = new Float64Array(order.length);
    let sum = 0;
    for (let i = 0; i < order.length; i++) {
      probs[i] = Math.exp((logits[order[i]] - maxLogit) / temperature);
      sum += probs[i];
    }
    // top-p keeps the smallest prefix whose mass reaches p (at least one token).
    const topP = this.opts.topP ?? 1;
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
    let kept = 0;
    for (let i = 0; i < keep; i++) kept += probs[i];
    let r = this.random() * kept;
    for (let i = 0; i < keep; i++) {
      r -= probs[i];
      if (r <= 0) return order[i];
    }
    return order[keep - 1];
  }
}
