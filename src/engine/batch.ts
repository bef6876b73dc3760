// Several independent prompts (one conversation each, typically one image + one question) decoded
// together. The point is throughput for batch captioning: one vision_encoder run for all images of
// one size, one prefill and one decoder step per token for the whole batch.
//
//   requests -> preprocess each image (a failure ends only that request, as an 'error' event)
//            -> vision_encoder over all images together          [B, 3, H, W] -> [B, N, hidden]
//            -> prompt ids per request, LEFT-padded to a common T  [B, T] (mask 0 on padding)
//            -> embed_tokens once, splice each row's image rows   [B, T, hidden]
//   prefill: decoder(all rows, empty past)  -> logits [B, vocab] -> one sampler per row
//            (on a CPU, BatchParts.prefill 'rows': each row alone, its cache then placed in the padded batch cache:
//            a prompt's prefill is compute-bound there, so running rows together gains nothing and holds every
//            row's activations at once; on bench-207m q4 a batch of 4 peaked at 891 MiB against 540 one by one)
//   step:    decoder(one token per row, past) ... a row stops at EOS / max / abort
//
// Finished rows leave the batch: the KV cache, the mask and the row map are compacted (and attention
// columns that became padding for every remaining row are dropped), so a long answer does not keep
// paying for rows that ended early. Padding never changes a row's positions (position ids come from
// cumsum(mask) - 1) and a padded key gets exactly zero attention weight, so greedy tokens equal the
// one-by-one tokens; batch.test.ts checks that on the tiny fixture.

import * as ort from 'onnxruntime-node';
import { IN_PLACE_GROWTH, packed, type KvCache, type LanguageModel } from './decoder';
import { EngineError, throwIfAborted } from '../core';
import type { ModelSpec } from './modelFolder';
import { buildPromptIds, renderPrompt } from './prompt';
import { Sampler } from './sampler';
import { TextStreamer, type Tokenizer } from './tokenizer';
import type { ChatTurn, GenerateOptions, GenerationStats, ImageInput, PreprocessedImage } from '../core';
import type { VisionEncoder } from './vision';
import { DEFAULT_MAX_NEW_TOKENS } from './generate';
import { checkContextFits } from './context';

/** What the batch loop needs from a loaded model (LlavaModel hands over its parts). */
export interface BatchParts {
  spec: ModelSpec;
  tokenizer: Tokenizer;
  lm: LanguageModel;
  vision: VisionEncoder;
  preprocess(image: ImageInput): Promise<PreprocessedImage>;
  /** 'together': one prefill run for the padded batch (default); 'rows': each row alone (see the header) */
  prefill?: 'together' | 'rows';
}

/** One row of the batch. Options not here (max tokens, temperature, signal...) are shared by all rows. */
export interface BatchRequest {
  turns: ChatTurn[];
  /** text forced at the start of this row's answer; it is the start of the row's `done.text` */
  answerPrefix?: string;
  /** this row's sampler seed (default: the shared options' seed), so a row samples as generate() would */
  seed?: number;
  /** this row's cap on new tokens (default: the shared maxNewTokens) */
  maxNewTokens?: number;
}

export type BatchEvent =
  | { type: 'delta'; index: number; text: string }
  | { type: 'done'; index: number; text: string; stats: GenerationStats }
  /** this request could not start (image decode, too large, prompt); the other rows go on */
  | { type: 'error'; index: number; error: Error };

/** A request that survived preparation: its unpadded prompt and per-row decoding state. */
interface Row {
  index: number;
  ids: number[];
  imageTokens: number;
  spans: { start: number; length: number }[];
  features: { data: Float32Array; rows: number; hidden: number }[];
  sampler: Sampler;
  history: number[];
  generated: number[];
  streamer: TextStreamer;
  text: string;
  maxNewTokens: number;
}

/**
 * Decodes the requests together. Events of different rows interleave; each row ends with exactly one
 * 'done' or 'error'. Aborting ends every unfinished row with stopReason 'aborted' (during preparation
 * it throws AbortedError, as generate() does).
 */
export async function* generateBatch(parts: BatchParts, requests: BatchRequest[], opts: GenerateOptions = {}): AsyncGenerator<BatchEvent> {
  const startedAt = performance.now();
  const { lm, tokenizer, spec } = parts;
  const maxNewTokens = opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS;
  const eos = new Set(spec.generation.eosTokenIds);
  const hidden = lm.hidden;

  // ---- images: preprocess per request, encode all at once ----------------------------------
  const pixels: { request: number; image: PreprocessedImage }[] = [];
  const failed = new Map<number, Error>();
  for (let i = 0; i < requests.length; i++) {
    throwIfAborted(opts.signal);
    const images = requests[i].turns.flatMap((t) => (t.role === 'user' ? (t.images ?? []) : []));
    try {
      for (const image of images) pixels.push({ request: i, image: await parts.preprocess(image) });
    } catch (err) {
      failed.set(i, asError(err));
      for (let k = pixels.length - 1; k >= 0 && pixels[k].request === i; k--) pixels.pop();
    }
  }
  throwIfAborted(opts.signal);
  const encoded = pixels.length ? await parts.vision.encode(pixels.map((p) => p.image)) : [];

  // ---- prompts -----------------------------------------------------------------------------
  const rows: Row[] = [];
  for (let i = 0; i < requests.length; i++) {
    if (failed.has(i)) continue;
    const req = requests[i];
    const features = encoded.filter((_, k) => pixels[k].request === i);
    try {
      const text = renderPrompt(spec, req.turns, { addGenerationPrompt: true, answerPrefix: req.answerPrefix });
      const { ids, imageSpans } = buildPromptIds(tokenizer, spec, text, features.map((f) => f.rows));
      checkContextFits(ids.length, req.maxNewTokens ?? maxNewTokens, spec.contextLength); // this row fails alone
      for (const f of features) {
        if (f.hidden !== hidden) throw new EngineError('GENERATION', `image features have ${f.hidden} columns but the decoder's hidden size is ${hidden}`);
      }
      const streamer = TextStreamer.continuing(tokenizer, req.answerPrefix);
      rows.push({
        index: i,
        ids,
        imageTokens: features.reduce((n, f) => n + f.rows, 0),
        spans: imageSpans,
        features,
        sampler: new Sampler({ ...opts, seed: req.seed ?? opts.seed }),
        history: [...ids],
        generated: [],
        streamer,
        text: req.answerPrefix ?? '',
        maxNewTokens: req.maxNewTokens ?? maxNewTokens,
      });
    } catch (err) {
      failed.set(i, asError(err));
    }
  }
  for (const [index, error] of [...failed].sort((a, b) => a[0] - b[0])) yield { type: 'error', index, error };
  if (!rows.length) return;
  for (const row of rows) if (row.text) yield { type: 'delta', index: row.index, text: row.text };

  // ---- left-padded prefill inputs ----------------------------------------------------------
  let B = rows.length;
  const T = Math.max(...rows.map((r) => r.ids.length));
  const padId = spec.generation.padTokenId ?? tokenizer.padTokenId ?? spec.generation.eosTokenIds[0] ?? 0;
  const paddedIds = new Array<number>(B * T).fill(padId); // [B, T]
  let mask: number[] = new Array<number>(B * T).fill(0); // [B, past + T], 1 = attend
  rows.forEach((row, b) => {
    const pad = T - row.ids.length;
    for (let j = 0; j < row.ids.length; j++) {
      paddedIds[b * T + pad + j] = row.ids[j];
      mask[b * T + pad + j] = 1;
    }
  });
  let embeds = await lm.embed(paddedIds, B); // [B, T, hidden]
  rows.forEach((row, b) => {
    const pad = T - row.ids.length;
    row.spans.forEach((span, k) => embeds.set(row.features[k].data, (b * T + pad + span.start) * hidden));
    row.features = []; // spliced: let the feature arrays go
  });

  // ---- decode ------------------------------------------------------------------------------
  let active = rows; // rows still decoding, in cache row order
  let cache = lm.emptyCache(B);
  let width = T; // mask columns = cache.length + next input length
  let firstTokenAt = 0;
  const finish = (row: Row, stopReason: GenerationStats['stopReason']): BatchEvent[] => {
    const events: BatchEvent[] = [];
    const tail = row.streamer.flush();
    if (tail) {
      row.text += tail;
      events.push({ type: 'delta', index: row.index, text: tail });
    }
    const end = performance.now();
    const decodeMs = firstTokenAt ? end - firstTokenAt : 0;
    const n = row.generated.length;
    events.push({
      type: 'done',
      index: row.index,
      text: row.text,
      stats: {
        promptTokens: row.ids.length,
        newTokens: n,
        imageTokens: row.imageTokens,
        timeToFirstTokenMs: firstTokenAt ? firstTokenAt - startedAt : end - startedAt,
        decodeTokensPerSecond: n > 1 && decodeMs > 0 ? ((n - 1) * 1000) / decodeMs : 0,
        totalMs: end - startedAt,
        stopReason,
        tokenIds: row.generated,
      },
    });
    return events;
  };

  try {
    while (active.length) {
      if (opts.signal?.aborted) {
        for (const row of active) yield* finish(row, 'aborted');
        return;
      }
      const step = cache.length === 0 && B > 1 && parts.prefill === 'rows' && !lm.deviceKv ? await prefillRows(lm, embeds, mask, B) : await lm.forward(embeds, mask, cache); // logits [B, vocab]
      cache = step.cache;
      if (!firstTokenAt) firstTokenAt = performance.now();
      const keep: number[] = [];
      const next: number[] = [];
      const events: BatchEvent[] = [];
      for (let b = 0; b < B; b++) {
        const row = active[b];
        const id = row.sampler.sample(step.logits.subarray(b * step.vocab, (b + 1) * step.vocab), row.history);
        if (eos.has(id)) {
          events.push(...finish(row, 'eos'));
          continue;
        }
        row.generated.push(id);
        row.history.push(id);
        const delta = row.streamer.push(id);
        if (delta) {
          row.text += delta;
          events.push({ type: 'delta', index: row.index, text: delta });
        }
        if (row.generated.length >= row.maxNewTokens) events.push(...finish(row, 'max_tokens'));
        else {
          keep.push(b);
          next.push(id);
        }
      }
      yield* events;
      if (!keep.length) return;

      // Rows that ended leave the batch; then columns that are padding for every remaining row go too.
      const past = cache.length;
      let oldMask = mask;
      if (keep.length < B) {
        cache = selectRows(await lm.toHost(cache), keep); // rows are cut on the host (a rare event: a row ended)
        oldMask = keep.flatMap((b) => mask.slice(b * past, (b + 1) * past));
        active = keep.map((b) => active[b]);
        B = keep.length;
        let lead = past;
        for (let b = 0; b < B; b++) lead = Math.min(lead, oldMask.slice(b * past, (b + 1) * past).indexOf(1));
        if (lead > 0) {
          cache = dropLeadingColumns(cache, lead);
          oldMask = Array.from({ length: B }, (_, b) => oldMask.slice(b * past + lead, (b + 1) * past)).flat();
        }
      }
      width = cache.length + 1;
      mask = new Array<number>(B * width);
      for (let b = 0; b < B; b++) {
        for (let j = 0; j < width - 1; j++) mask[b * width + j] = oldMask[b * (width - 1) + j];
        mask[b * width + width - 1] = 1;
      }
      embeds = await lm.embed(next, B); // [B, 1, hidden]
    }
  } finally {
    lm.release(cache); // a GPU cache (WebGPU) is freed at once, also when the consumer stops early
  }
}

type KvData = Float32Array | Uint16Array;

/**
 * The prefill of a left-padded batch (`embeds` [B, T, hidden], `mask` [B, T]) run one row at a time, each without its
 * padding: the logits [B, vocab] and the batch cache [B, H, T, D] the batched run would give (up to the order of float
 * sums), each row's positions after its padding, the padding zeros; with room to grow where the model keeps an in-place
 * cache. Host caches only.
 */
export async function prefillRows(lm: LanguageModel, embeds: Float32Array, mask: readonly number[], B: number): Promise<{ logits: Float32Array; vocab: number; cache: KvCache }> {
  const T = mask.length / B;
  const H = lm.hidden;
  const rows: { pad: number; logits: Float32Array; cache: KvCache }[] = [];
  for (let b = 0; b < B; b++) {
    const pad = mask.slice(b * T, (b + 1) * T).indexOf(1);
    if (pad < 0) throw new Error(`batch row ${b} has no token`);
    const step = await lm.forward(embeds.slice((b * T + pad) * H, (b + 1) * T * H), new Array<number>(T - pad).fill(1), lm.emptyCache(1));
    rows.push({ pad, logits: step.logits, cache: step.cache }); // an in-place cache is read below at its own stride, not copied first
  }
  const vocab = rows[0].logits.length;
  const logits = new Float32Array(B * vocab);
  rows.forEach((r, b) => logits.set(r.logits, b * vocab));
  const capacity = lm.inPlaceKv || lm.holedKv ? T + IN_PLACE_GROWTH : T;
  const tensors: Record<string, ort.Tensor> = {};
  for (const name of Object.keys(rows[0].cache.tensors)) {
    const [, heads, , D] = rows[0].cache.tensors[name].dims;
    const first = rows[0].cache.tensors[name].data as KvData;
    const dst = new (first.constructor as { new (n: number): KvData })(B * heads * capacity * D);
    rows.forEach((r, b) => {
      const t = r.cache.tensors[name];
      const src = t.data as KvData;
      const stride = t.dims[2]; // the row's own positions, or its capacity
      const len = T - r.pad;
      for (let h = 0; h < heads; h++) dst.set(src.subarray(h * stride * D, (h * stride + len) * D), ((b * heads + h) * capacity + r.pad) * D);
    });
    tensors[name] = new ort.Tensor(rows[0].cache.tensors[name].type as 'float32', dst as Float32Array, [B, heads, capacity, D]);
  }
  return { logits, vocab, cache: { length: T, batch: B, tensors, ...(capacity > T ? { capacity } : {}) } };
}

/** Keeps the given batch rows of every cache tensor: [B, H, past, D] -> [keep, H, past, D]. */
export function selectRows(inPlaceOrPacked: KvCache, keep: number[]): KvCache {
  const cache = packed(inPlaceOrPacked);
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(cache.tensors)) {
    const [B, H, P, D] = t.dims;
    const rowSize = H * P * D;
    const src = t.data as KvData;
    const dst = new (src.constructor as { new (n: number): KvData })(keep.length * rowSize);
    keep.forEach((b, k) => {
      if (b >= B) throw new RangeError(`row ${b} of a batch of ${B}`);
      dst.set(src.subarray(b * rowSize, (b + 1) * rowSize), k * rowSize);
    });
    tensors[name] = new ort.Tensor(t.type as 'float32', dst as Float32Array, [keep.length, H, P, D]);
  }
  return { length: cache.length, batch: keep.length, tensors };
}

/** Drops the first `n` past positions of every cache tensor: [B, H, past, D] -> [B, H, past - n, D]. */
export function dropLeadingColumns(inPlaceOrPacked: KvCache, n: number): KvCache {
  const cache = packed(inPlaceOrPacked);
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(cache.tensors)) {
    const [B, H, P, D] = t.dims;
    const src = t.data as KvData;
    const dst = new (src.constructor as { new (n: number): KvData })(B * H * (P - n) * D);
    for (let bh = 0; bh < B * H; bh++) dst.set(src.subarray((bh * P + n) * D, (bh + 1) * P * D), bh * (P - n) * D);
    tensors[name] = new ort.Tensor(t.type as 'float32', dst as Float32Array, [B, H, P - n, D]);
  }
  return { length: cache.length - n, batch: cache.batch, tensors };
}

function asError(err: unknown): Error {
  if (err instanceof Error) return err;
  return new Error(String(err));
}

