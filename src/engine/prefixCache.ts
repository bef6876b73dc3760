// Conversations keep their KV cache. A follow-up question's prompt starts with the whole earlier
// conversation (system text, image, question, answer), so the decoder's cache for that prefix is
// already known from the previous run: only the new tokens need a prefill. Regenerate is the same
// prompt again (all of it is reused but the last token, which must run to give logits).
//
// Entries are matched by the exact sequence of what the decoder saw, token by token, where an image
// row is identified by the image's content key (its rows all carry the same token id, so the id alone
// cannot tell two images apart). The longest common prefix over all entries wins; an edited or
// cleared conversation simply matches less (never wrongly). Entries are kept LRU within a byte budget.
//
//   cache tensors  past_key_values.{i}.key|value  [1, kv_heads, past, head_dim]  f32 or f16

import { firstPositions, IN_PLACE_GROWTH, type KvCache } from './decoder';

/** One position of a prompt as the decoder sees it: a token id, or an image row (by image key). */
export type PrefixKey = number | string;

interface Entry {
  keys: PrefixKey[];
  cache: KvCache;
  bytes: number;
}

export const DEFAULT_PREFIX_CACHE_BYTES = 512 * 1024 * 1024;

export class PrefixCache {
  /** least recently used first */
  private entries: Entry[] = [];

  constructor(private readonly budgetBytes = DEFAULT_PREFIX_CACHE_BYTES) {}

  /** bytes held by all entries */
  get bytes(): number {
    return this.entries.reduce((n, e) => n + e.bytes, 0);
  }

  get size(): number {
    return this.entries.length;
  }

  /**
   * The longest cached prefix of `keys`, at most `keys.length - 1` positions (the last one must run
   * to produce logits), as a cache of exactly that length; undefined when nothing useful matches.
   */
  lookup(keys: readonly PrefixKey[]): KvCache | undefined {
    let best: Entry | undefined;
    let bestLength = 0;
    for (const e of this.entries) {
      const n = commonPrefix(e.keys, keys, Math.min(e.cache.length, keys.length - 1));
      if (n > bestLength) {
        best = e;
        bestLength = n;
      }
    }
    if (!best) return undefined;
    this.touch(best);
    return truncate(best.cache, bestLength);
  }

  /**
   * Remembers `cache`, which holds the first `cache.length` positions of `keys`. An entry this one
   * extends (the same conversation, one turn earlier) is replaced.
   */
  store(keys: readonly PrefixKey[], inPlaceOrPacked: KvCache): void {
    if (inPlaceOrPacked.batch !== 1 || inPlaceOrPacked.length === 0) return;
    // an in-place cache is kept as it is (its room included): the run that made it is over, and lookup() hands out
    // copies, so no later run writes into it
    const cache = inPlaceOrPacked;
    const covered = keys.slice(0, cache.length);
    const bytes = cacheBytes(cache);
    if (bytes > this.budgetBytes) return;
    this.entries = this.entries.filter((e) => !(e.cache.length <= covered.length && commonPrefix(e.keys, covered, e.cache.length) === e.cache.length));
    this.entries.push({ keys: covered, cache, bytes });
    let total = this.bytes;
    while (total > this.budgetBytes && this.entries.length > 1) total -= this.entries.shift()!.bytes;
  }

  clear(): void {
    this.entries = [];
  }

  private touch(e: Entry): void {
    this.entries = this.entries.filter((x) => x !== e);
    this.entries.push(e);
  }
}

function commonPrefix(a: readonly PrefixKey[], b: readonly PrefixKey[], limit: number): number {
  const n = Math.min(a.length, b.length, limit);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

function cacheBytes(cache: KvCache): number {
  return Object.values(cache.tensors).reduce((n, t) => n + (t.data as ArrayBufferView).byteLength, 0);
}

/**
 * The first `length` positions of a batch-1 cache: [1, H, past, D] -> [1, H, length, D] (a copy, or the cache itself
 * when it is exactly that and not in place). A copy of an in-place cache keeps IN_PLACE_GROWTH positions of room,
 * so that a follow-up question or Regenerate appends to it without another copy.
 */
export function truncate(cache: KvCache, length: number): KvCache {
  if (length === cache.length && cache.capacity === undefined) return cache;
  return firstPositions(cache, length, cache.capacity !== undefined ? IN_PLACE_GROWTH : 0);
}
