// Next-token selection from one row of logits. The order of the transforms follows Hugging Face's
// generate(): repetition penalty, temperature, top-k, top-p, then a draw. With temperature 0 (or
// unset) it is greedy: the first index of the maximum, as torch.argmax picks it.

import type { SamplingOptions } from '../core';

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

/**
 * Tokens whose weight exp((logit - max) / temperature) is below this are left out of the sort: on a
 * 151k vocabulary sorting everything cost 120-180 ms per token (bench/README.md). When the walk below
 * would need one of them (a draw that lands in that tail), the full sort runs after all.
 */
const CANDIDATE_MIN_WEIGHT = 1e-4;

/** Candidates in draw order (logit descending, then index ascending, as a stable sort of all ids gives). */
interface Candidates {
  order: number[];
  /** [order.length] f64: exp((logit - max) / temperature) */
  weights: Float64Array;
  /** the weights of every candidate token, including any left out of `order` */
  sum: number;
  /** whether `order` holds every candidate (false: the tail below CANDIDATE_MIN_WEIGHT is missing) */
  complete: boolean;
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

    const u = this.random(); // one draw per token, whichever path below picks it
    const topK = this.opts.topK ?? 0;
    if (topK > 0 && topK < logits.length) {
      // top-k cuts the list before the softmax: only the k best are ever weighed.
      return this.pick(weigh(logits, topKIndices(logits, topK), this.opts.temperature!, true), u)!;
    }
    return this.pick(likelyCandidates(logits, this.opts.temperature!), u) ?? this.pick(weigh(logits, allIndices(logits.length), this.opts.temperature!, true), u)!;
  }

  /** top-p, then the draw; undefined when an incomplete candidate list does not reach the answer. */
  private pick(c: Candidates, u: number): number | undefined {
    const { order, weights, sum } = c;
    // top-p keeps the smallest prefix whose mass reaches p (at least one token).
    const topP = this.opts.topP ?? 1;
    let keep = order.length;
    let cut = false;
    if (topP < 1) {
      let mass = 0;
      for (let i = 0; i < order.length; i++) {
        mass += weights[i] / sum;
        if (mass >= topP) {
          keep = i + 1;
          cut = true;
          break;
        }
      }
      if (!cut && !c.complete) return undefined;
    }
    let kept = 0;
    if (cut || c.complete) for (let i = 0; i < keep; i++) kept += weights[i];
    else kept = sum; // every token is kept, the tail included
    let r = u * kept;
    for (let i = 0; i < keep; i++) {
      r -= weights[i];
      if (r <= 0) return order[i];
    }
    if (!cut && !c.complete) return undefined; // the draw fell into the unsorted tail
    return order[keep - 1];
  }
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * `ids` sorted by logit descending, then id ascending (what a stable sort of all ids gives). Each id
 * becomes one exact f64 key, (rank of its float32 bits) * 2^idBits + id, so the engine's native
 * numeric sort does the work: ~10x faster than sort() with a comparator on 100k+ ids.
 */
function sortByLogitDescending(logits: Float32Array, ids: number[]): number[] {
  const idBits = Math.max(1, Math.ceil(Math.log2(logits.length)));
  if (idBits > 21) return ids.sort((a, b) => logits[b] - logits[a] || a - b); // 32 + idBits must stay <= 53
  const scale = 2 ** idBits;
  const keys = new Float64Array(ids.length);
  for (let i = 0; i < ids.length; i++) {
    f32[0] = logits[ids[i]] + 0; // -0 -> +0: equal logits tie on the id
    const bits = u32[0];
    const ascending = bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0; // unsigned order = float order
    keys[i] = (0xffffffff - ascending) * scale + ids[i];
  }
  keys.sort();
  for (let i = 0; i < ids.length; i++) ids[i] = keys[i] % scale;
  return ids;
}

function allIndices(n: number): number[] {
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** Weights of `ids` after sorting them into draw order; `sum` over exactly these ids, in that order. */
function weigh(logits: Float32Array, ids: number[], temperature: number, complete: boolean): Candidates {
  const order = sortByLogitDescending(logits, ids);
  const maxLogit = logits[order[0]];
  const weights = new Float64Array(order.length);
  let sum = 0;
  for (let i = 0; i < order.length; i++) {
    weights[i] = Math.exp((logits[order[i]] - maxLogit) / temperature);
    sum += weights[i];
  }
  return { order, weights, sum, complete };
}

/** Every token weighed (for `sum`), only those above CANDIDATE_MIN_WEIGHT sorted. */
function likelyCandidates(logits: Float32Array, temperature: number): Candidates {
  const maxLogit = logits[argmax(logits)];
  const ids: number[] = [];
  let sum = 0;
  for (let i = 0; i < logits.length; i++) {
    const w = Math.exp((logits[i] - maxLogit) / temperature);
    sum += w;
    if (w >= CANDIDATE_MIN_WEIGHT) ids.push(i);
  }
  const c = weigh(logits, ids, temperature, ids.length === logits.length);
  return { ...c, sum: c.complete ? c.sum : sum };
}

/** The k best ids (ties: lower id first), unordered: a quickselect for the k-th largest logit, then one pass. */
function topKIndices(logits: Float32Array, k: number): number[] {
  const kth = kthLargest(Float32Array.from(logits), k);
  const ids: number[] = [];
  for (let i = 0; i < logits.length; i++) if (logits[i] > kth) ids.push(i);
  for (let i = 0; i < logits.length && ids.length < k; i++) if (logits[i] === kth) ids.push(i);
  return ids;
}

/** The k-th largest value (1-based) of `values`, which it reorders. Hoare's selection, O(n) on average. */
function kthLargest(values: Float32Array, k: number): number {
  let lo = 0;
  let hi = values.length - 1;
  const target = k - 1; // index in descending order
  while (lo < hi) {
    const pivot = values[(lo + hi) >>> 1];
    let i = lo;
    let j = hi;
    while (i <= j) {
      while (values[i] > pivot) i++;
      while (values[j] < pivot) j--;
      if (i <= j) {
        const t = values[i];
        values[i] = values[j];
        values[j] = t;
        i++;
        j--;
      }
    }
    if (target <= j) hi = j;
    else if (target >= i) lo = i;
    else return values[target];
  }
  return values[target];
}
