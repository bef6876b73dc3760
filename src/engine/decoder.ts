// The text half of the model: embed_tokens (ids -> embeddings) and decoder_model_merged (embeddings +
// KV cache -> logits + new cache). Everything about the cache layout is read from the graph:
//   past_key_values.{i}.key / .value   [B, kv_heads, past, head_dim]   f32 or f16 (as the graph wants)
//   present.{i}.key / .value           [B, kv_heads, past + T, head_dim]
// The first step feeds an empty past (past = 0), as transformers.js does.
// A graph whose cache axis is named IN_PLACE_KV_DIM (`llava convert --graph fast`) instead gets a
// preallocated cache [B, kv_heads, capacity, head_dim] fed as `past` and bound as `present`: the graph
// appends the new positions in place and nothing grows. A graph that also returns the run's own keys and
// values (NEW_KV_PREFIX) has them fetched instead of `present.*`, and the engine appends them to the cache:
// onnxruntime-node would otherwise copy the whole cache out every step.
// A Hub-style graph that concatenates but returns the run's own keys and values too (the engine's edit,
// onnxView.ts newKeyValueOutputs) gets the same preallocated cache, fed whole with its unused positions masked
// out (`holedKv`): the graph's Concat stays inside onnxruntime, only the new positions and the logits come out.
// On WebGPU the session leaves `present.*` in GPU memory (sessionOptions' deviceOutputs) and the next run
// reads them from there: the cache never crosses to the host while a turn decodes (`KvCache.onDevice`).

import * as ort from 'onnxruntime-node';
import { IN_PLACE_KV_DIM, ModelLoadError, NEW_KV_PREFIX } from '../core';
import type { DeviceCopier } from './deviceCopy';
import { EmbeddingRows, SessionEmbedder, type Embedder } from './embedRows';
import { fromHalf, toHalf } from './half';
import { fixedDim, inputInfo, requireInput, requireOutput, type Session, type TensorInfo } from './onnx';

export interface KvCache {
  /** past sequence length held by the tensors */
  length: number;
  batch: number;
  /** keyed by the decoder's past input names: [B, kv_heads, capacity ?? length, head_dim] */
  tensors: Record<string, ort.Tensor>;
  /**
   * Set on a cache the decoder updates in place: the tensors hold `capacity` positions, the first
   * `length` of which count. The next forward() writes into these buffers, so whoever keeps such a cache
   * beyond the next step keeps `packed(cache)` instead.
   */
  capacity?: number;
  /**
   * The tensors live in GPU memory (WebGPU `gpu-buffer`). The next forward() consumes them (and frees them);
   * whoever keeps such a cache, or reshapes it, takes `await lm.toHost(cache)` first, and one that is dropped
   * is given to `lm.release(cache)`.
   */
  onDevice?: boolean;
}

/** A cache whose tensors hold exactly `length` positions: the cache itself, or a copy of an in-place one. */
export function packed(cache: KvCache): KvCache {
  if (cache.onDevice) throw new Error('this KV cache is in GPU memory: bring it to the host first (LanguageModel.toHost)');
  return cache.capacity === undefined ? cache : firstPositions(cache, cache.length);
}

/**
 * A copy of the first `length` positions of `cache` (any batch), its tensors exactly that long, or, with `room`,
 * an in-place cache with room for that many more (a kept cache continued by a short run needs no other copy).
 */
export function firstPositions(cache: KvCache, length: number, room = 0): KvCache {
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(cache.tensors)) tensors[name] = resized(t, length, length + room);
  return { length, batch: cache.batch, tensors, ...(room > 0 ? { capacity: length + room } : {}) };
}

/** A copy of `t` [B, H, P, D] with `positions` positions, the first `keep` copied from `t` (P >= keep). */
function resized(t: ort.Tensor, keep: number, positions: number): ort.Tensor {
  const [B, H, P, D] = t.dims;
  const src = t.data as Float32Array | Uint16Array;
  const dst = new (src.constructor as Float32ArrayConstructor | Uint16ArrayConstructor)(B * H * positions * D);
  for (let bh = 0; bh < B * H; bh++) dst.set(src.subarray(bh * P * D, bh * P * D + keep * D), bh * positions * D);
  return new ort.Tensor(t.type as 'float32' | 'float16', dst, [B, H, positions, D]);
}

/**
 * Positions an in-place cache gets beyond what a run needs when it is made or outgrown. Small on purpose:
 * onnxruntime-node returns every output as a new buffer, so each decode step copies the whole capacity out
 * (bench/README.md), while outgrowing costs one copy of the cache. Growing by G positions at a context of C
 * costs about G / 2 + C / G positions copied a step; 64 is near the least for contexts of 1-4 thousand.
 */
export const IN_PLACE_GROWTH = 64;

export interface CacheShapeHints {
  /** from config.json, used only where the graph leaves a dim symbolic */
  numKvHeads?: number;
  headDim?: number;
}

export interface DecoderTuning {
  /** head tokens per decoder run for long inputs (forces the head/tail split, for tests); default: HEAD_LOGITS_BYTES */
  prefillChunkTokens?: number;
  /**
   * The decoder quantizes its activations at run time (DynamicQuantizeLinear in the 8-bit `_int8` /
   * `_uint8` / `_quantized` files): one scale per tensor over every row of a run, so a prompt split into
   * runs gives other numbers than the one run transformers.js makes. Such a prompt runs whole unless
   * prefillChunkTokens forces the split, at the cost of ORT's [B, T, vocab] f32 logits buffer.
   */
  wholePrefill?: boolean;
  /** false: grow the cache by a copy per run even where the graph could append in place (benchmarks compare the two); default true */
  inPlaceKv?: boolean;
  /**
   * true: an in-place cache fetches `present.*` bound to itself (onnxruntime-node copies each out, a whole cache a
   * run) even where the graph returns the run's new keys and values (benchmarks compare the two); default false
   */
  fetchPresent?: boolean;
  /** positions an in-place cache grows by (IN_PLACE_GROWTH); with `doubling`, at least double (benchmarks compare policies) */
  inPlaceGrowth?: { positions: number; doubling?: boolean };
  /**
   * Given when the decoder session leaves `present.*` and `logits` in GPU memory (WebGPU, sessionOptions'
   * deviceOutputs): copies such tensors to the host (toHost, the logits' last row).
   */
  deviceCopier?: DeviceCopier;
}

const PAST = /^past_key_values\.(\d+)\.(key|value)$/;

/**
 * A decoder without `num_logits_to_keep` returns logits for every input position: [B, T, vocab] f32,
 * held twice when fetched (ORT's buffer and the copy onnxruntime-node hands to JS). For a 729-token image
 * prompt and a 151k vocabulary that is 2 x 440 MB. So a long prefill runs as a head, which fetches only
 * the cache (ORT still computes its logits, but nothing is copied out), in chunks whose logits fit
 * HEAD_LOGITS_BYTES, then a one-token tail that fetches the logits. Attention over the cache makes this
 * the same computation as one run. Inputs whose logits fit LOGITS_BYTES_PER_RUN run whole.
 */
const LOGITS_BYTES_PER_RUN = 16 * 1024 * 1024;
const HEAD_LOGITS_BYTES = 64 * 1024 * 1024;
/** Head chunks are never shorter than this: each run reads every weight once, so tiny chunks cost time. */
const MIN_CHUNK_TOKENS = 64;

export class LanguageModel {
  readonly hidden: number;
  readonly numLayers: number;
  private readonly pastNames: string[];
  readonly kvType: 'float32' | 'float16';
  private readonly kvHeads: number;
  private readonly headDim: number;
  private readonly embedsInput: TensorInfo;
  private readonly hasPositionIds: boolean;
  private readonly hasCacheBranch: boolean;
  private readonly hasLogitsToKeep: boolean;
  /** the graph returns [B, 1, vocab]: a prefill runs whole */
  readonly lastLogitsOnly: boolean;
  /** the graph updates a preallocated cache in place (see IN_PLACE_KV_DIM) */
  readonly inPlaceKv: boolean;
  /** with inPlaceKv: the run's new keys and values are fetched and appended here, `present.*` left unfetched (NEW_KV_PREFIX) */
  readonly appendsNewKv: boolean;
  /**
   * a concatenating graph that returns the run's new keys and values: the engine keeps a preallocated cache, feeds
   * all of it with the positions past `length` masked (attention gives them weight 0), and appends the new ones
   */
  readonly holedKv: boolean;
  /** the cache stays in GPU memory between runs (see KvCache.onDevice) */
  readonly deviceKv: boolean;
  private readonly copier: DeviceCopier | undefined;
  /** logits columns, from the graph's metadata or the first run */
  private vocab: number | undefined;

  private readonly embedder: Embedder;

  /** `embed`: the embed_tokens session, or its table's rows read from the file (embedRows.ts) */
  constructor(
    embed: Session | Embedder,
    private readonly decoderSession: Session,
    readonly files: { embed: string; decoder: string },
    hints: CacheShapeHints,
    private readonly tuning: DecoderTuning = {},
  ) {
    this.embedder = 'run' in embed ? new SessionEmbedder(embed, files.embed) : embed;
    this.embedsInput = requireInput(decoderSession, files.decoder, 'inputs_embeds');
    requireInput(decoderSession, files.decoder, 'attention_mask');
    const logits = requireOutput(decoderSession, files.decoder, 'logits');
    const hidden = fixedDim(this.embedsInput, 2) ?? this.embedder.hidden;
    if (!hidden) throw new ModelLoadError(`${files.decoder}: inputs_embeds has no fixed hidden size`);
    this.hidden = hidden;

    this.pastNames = decoderSession.inputNames.filter((n) => PAST.test(n));
    if (this.pastNames.length === 0) {
      throw new ModelLoadError(`${files.decoder}: no past_key_values.* inputs; a decoder with a KV cache is required`);
    }
    for (const name of this.pastNames) requireOutput(decoderSession, files.decoder, presentName(name));
    this.numLayers = new Set(this.pastNames.map((n) => PAST.exec(n)![1])).size;
    const first = inputInfo(decoderSession, this.pastNames[0])!;
    if (first.type !== 'float32' && first.type !== 'float16') {
      throw new ModelLoadError(`${files.decoder}: unsupported KV cache type ${first.type}`);
    }
    this.kvType = first.type;
    const kvHeads = fixedDim(first, 1) ?? hints.numKvHeads;
    const headDim = fixedDim(first, 3) ?? hints.headDim;
    if (!kvHeads || !headDim) {
      throw new ModelLoadError(`${files.decoder}: the KV cache shape [${first.shape.join(', ')}] leaves heads/head size open and config.json does not give them`);
    }
    this.kvHeads = kvHeads;
    this.headDim = headDim;
    this.copier = tuning.deviceCopier;
    this.deviceKv = this.copier !== undefined;
    // a preallocated host cache bound as the output would pull the cache back to the host every run
    this.inPlaceKv = !this.deviceKv && tuning.inPlaceKv !== false && this.kvType === 'float32' && first.shape[2] === IN_PLACE_KV_DIM;
    const returnsNewKv = this.pastNames.every((n) => decoderSession.outputNames.includes(newKvName(n)));
    this.appendsNewKv = this.inPlaceKv && !tuning.fetchPresent && returnsNewKv;
    this.hasPositionIds = decoderSession.inputNames.includes('position_ids');
    // positions must come from position_ids: a graph that counts them from the cache's length would count the holes
    this.holedKv = !this.deviceKv && tuning.inPlaceKv !== false && first.shape[2] !== IN_PLACE_KV_DIM && returnsNewKv && this.hasPositionIds;
    this.hasCacheBranch = decoderSession.inputNames.includes('use_cache_branch');
    // a graph that returns only the last position's logits [B, 1, vocab] runs every prefill whole
    this.hasLogitsToKeep = decoderSession.inputNames.includes('num_logits_to_keep');
    this.lastLogitsOnly = this.hasLogitsToKeep || fixedDim(logits, 1) === 1;
    this.vocab = fixedDim(logits, 2);
  }

  /** ids [B, T] -> embeddings [B, T, hidden] f32 */
  embed(ids: ArrayLike<number>, batch = 1): Promise<Float32Array> {
    return this.embedder.embed(ids, batch);
  }

  /** where the embeddings come from */
  get embeddings(): 'rows read from the file' | 'session' {
    return this.embedder instanceof EmbeddingRows ? 'rows read from the file' : 'session';
  }

  emptyCache(batch = 1): KvCache {
    const tensors: Record<string, ort.Tensor> = {};
    for (const name of this.pastNames) {
      const dims = [batch, this.kvHeads, 0, this.headDim];
      tensors[name] = this.kvType === 'float16' ? new ort.Tensor('float16', new Uint16Array(0), dims) : new ort.Tensor('float32', new Float32Array(0), dims);
    }
    return { length: 0, batch, tensors };
  }

  /** A cache whose tensors are on the host (a GPU one is downloaded and freed); the same cache when it already is. */
  async toHost(cache: KvCache): Promise<KvCache> {
    if (!cache.onDevice) return cache;
    if (!this.copier) throw new Error('a GPU cache without a way to copy it to the host');
    const tensors: Record<string, ort.Tensor> = {};
    try {
      for (const [name, t] of Object.entries(cache.tensors)) tensors[name] = await this.copier.toHost(t);
    } finally {
      this.release(cache);
    }
    return { length: cache.length, batch: cache.batch, tensors };
  }

  /** Releases what this object made beside the sessions it was given (the GPU-to-host copy session). */
  async close(): Promise<void> {
    this.embedder.close();
    await this.copier?.release();
  }

  /** Frees a GPU cache nobody will use again (a host cache is left to the garbage collector). */
  release(cache: KvCache | undefined): void {
    if (!cache?.onDevice) return;
    for (const t of Object.values(cache.tensors)) if (t.location === 'gpu-buffer') t.dispose();
  }

  /**
   * One decoder run. `embeds` [B, T, hidden] f32; `attentionMask` [B, past + T] (1 = attend, 0 = padding;
   * left padding for batches). Returns the last position's logits [B, vocab] f32 and the grown cache.
   */
  async forward(embeds: Float32Array, attentionMask: ArrayLike<number>, cache: KvCache): Promise<{ logits: Float32Array; vocab: number; cache: KvCache }> {
    const B = cache.batch;
    const H = this.hidden;
    const T = embeds.length / (B * H);
    const past = cache.length;
    if (attentionMask.length !== B * (past + T)) {
      throw new Error(`attention mask has ${attentionMask.length} entries, expected ${B} x ${past + T}`);
    }
    const forced = !!this.tuning.prefillChunkTokens && T > this.tuning.prefillChunkTokens;
    if (!forced && (this.lastLogitsOnly || this.tuning.wholePrefill || T === 1 || !this.vocab || B * T * this.vocab * 4 <= LOGITS_BYTES_PER_RUN)) {
      return this.run(embeds, attentionMask, cache, true);
    }
    const chunk = this.headChunkTokens(B);
    let current = cache;
    for (let start = 0; start < T; ) {
      // the head goes in chunks up to T - 1; the last token runs alone and is the only one whose logits are fetched
      const end = start < T - 1 ? Math.min(T - 1, start + chunk) : T;
      const part = new Float32Array(B * (end - start) * H); // [B, end - start, hidden]
      const partMask = new Array<number>(B * (past + end)); // [B, past + end]: the mask's first columns
      for (let b = 0; b < B; b++) {
        part.set(embeds.subarray((b * T + start) * H, (b * T + end) * H), b * (end - start) * H);
        for (let j = 0; j < past + end; j++) partMask[b * (past + end) + j] = attentionMask[b * (past + T) + j];
      }
      const step = await this.run(part, partMask, current, end === T);
      if (end === T) return step;
      current = step.cache;
      start = end;
    }
    throw new Error('unreachable: the loop ends with the tail run');
  }

  /** Head tokens per decoder run that keep ORT's [B, T, vocab] logits buffer within the budget. */
  private headChunkTokens(batch: number): number {
    if (this.tuning.prefillChunkTokens) return this.tuning.prefillChunkTokens;
    return Math.max(MIN_CHUNK_TOKENS, Math.floor(HEAD_LOGITS_BYTES / (batch * (this.vocab ?? 1) * 4)));
  }

  /**
   * One decoder run over all of `embeds` [B, T, hidden]; the mask is already checked against the cache.
   * Without `wantLogits` only the cache is fetched and the returned logits are empty.
   */
  private async run(embeds: Float32Array, attentionMask: ArrayLike<number>, cache: KvCache, wantLogits: boolean): Promise<{ logits: Float32Array; vocab: number; cache: KvCache }> {
    const B = cache.batch;
    const T = embeds.length / (B * this.hidden);
    const total = cache.length + T;
    // an in-place cache has room for this run's positions (a new or outgrown one is copied once)
    const inPlace = this.inPlaceKv || this.holedKv ? withCapacity(cache, total, this.tuning.inPlaceGrowth) : undefined;
    // holed: a run that fits the room, or one no longer than the past (every decode step, a follow-up question), is
    // fed the whole (grown) buffer, the positions from `length` to the capacity masked; a prompt longer than its past
    // (a first prefill) the exact past, so that it does not attend over as many empty positions as it has tokens,
    // its positions then written into the grown buffer
    const holes = this.holedKv && (cache.capacity === inPlace!.capacity || cache.length >= T);
    const past = !this.holedKv ? (inPlace ?? cache) : holes ? inPlace! : packed(cache);
    const pastPositions = past.capacity ?? past.length;
    const width = this.holedKv ? pastPositions + T : total;
    const mask = new BigInt64Array(B * width);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < total; j++) {
        // the first `length` columns are the past's; the run's own T follow its (holed) positions
        const at = j < cache.length ? j : j - cache.length + pastPositions;
        mask[b * width + (this.holedKv ? at : j)] = attentionMask[b * total + j] ? 1n : 0n;
      }
    }
    const feeds: Record<string, ort.Tensor> = {
      inputs_embeds:
        this.embedsInput.type === 'float16' ? new ort.Tensor('float16', toHalf(embeds), [B, T, this.hidden]) : new ort.Tensor('float32', embeds, [B, T, this.hidden]),
      attention_mask: new ort.Tensor('int64', mask, [B, width]),
      ...past.tensors,
    };
    // positions count the mask's ones, so the holes do not move them
    if (this.hasPositionIds) feeds.position_ids = new ort.Tensor('int64', positionIds(mask, B, width, T), [B, T]);
    if (this.hasCacheBranch) feeds.use_cache_branch = new ort.Tensor('bool', [cache.length > 0], [1]);
    if (this.hasLogitsToKeep) feeds.num_logits_to_keep = new ort.Tensor('int64', [1n], []);

    let next: KvCache;
    let out: ort.InferenceSession.ReturnType;
    if (inPlace && (this.appendsNewKv || this.holedKv)) {
      // the run's own keys and values, appended here; present.* stays in onnxruntime (not copied out)
      const fetches = this.pastNames.map(newKvName);
      out = await this.decoderSession.run(feeds, wantLogits ? [...fetches, 'logits'] : fetches);
      for (const name of this.pastNames) appendPositions(inPlace.tensors[name], out[newKvName(name)], cache.length);
      next = { ...inPlace, length: total };
    } else if (inPlace) {
      // present.* bound to the buffers fed as past_key_values.*: the same memory, appended in place
      const fetches: Record<string, ort.Tensor | null> = {};
      for (const name of this.pastNames) fetches[presentName(name)] = inPlace.tensors[name];
      if (wantLogits) fetches.logits = null;
      out = await this.decoderSession.run(feeds, fetches);
      next = { ...inPlace, length: total };
    } else {
      const presents = this.pastNames.map(presentName);
      // a session that leaves its outputs on the GPU is asked for all of them (onnxruntime-node 1.30 answers
      // "Output count mismatch" to fewer); its logits stay there too, and only their last row is copied below
      out = await this.decoderSession.run(feeds, wantLogits || this.deviceKv ? [...presents, 'logits'] : presents);
      const tensors: Record<string, ort.Tensor> = {};
      for (const name of this.pastNames) tensors[name] = out[presentName(name)];
      next = { length: total, batch: B, tensors, ...(tensors[this.pastNames[0]].location === 'gpu-buffer' ? { onDevice: true } : {}) };
      this.release(cache); // a GPU cache is consumed by the run that reads it
    }
    let logitsTensor = out.logits; // [B, T or 1, vocab]
    if (logitsTensor?.location === 'gpu-buffer') {
      const onDevice = logitsTensor;
      try {
        if (wantLogits) logitsTensor = await this.copier!.lastRowToHost(onDevice); // [B, 1, vocab]
      } finally {
        onDevice.dispose();
      }
    }
    if (!wantLogits) return { logits: new Float32Array(0), vocab: this.vocab ?? 0, cache: next };

    const [, rows, vocab] = logitsTensor.dims;
    this.vocab = vocab;
    const all = logitsTensor.type === 'float16' ? fromHalf(logitsTensor.data as Uint16Array) : (logitsTensor.data as Float32Array);
    let logits: Float32Array; // [B, vocab]
    if (rows === 1) {
      logits = all; // already [B, 1, vocab]: the run's own buffer, nothing else refers to it
    } else {
      // A copy, not a view: a view would keep the whole [B, T, vocab] buffer alive.
      logits = new Float32Array(B * vocab);
      for (let b = 0; b < B; b++) logits.set(all.subarray((b * rows + rows - 1) * vocab, (b * rows + rows) * vocab), b * vocab);
    }
    return { logits, vocab, cache: next };
  }
}

/**
 * Whether `holed` (a LanguageModel feeding a preallocated cache with masked holes) gives the logits that `growing`
 * (the same session, its cache grown by the graph) gives: a 3-token prefill, then one step, the holes filled with
 * a non-zero value first so that a graph attending to them cannot pass. The edit that returns a Hub graph's new keys
 * and values (onnxView.ts) recognises how its cache grows, not how its attention reads the mask; every export we
 * know masks by attention_mask, and this checks the one at hand once, at load, for the price of four short runs.
 */
export async function holesAgree(holed: LanguageModel, growing: LanguageModel, tolerance: number): Promise<{ agree: boolean; difference: number }> {
  const H = holed.hidden;
  const embeds = Float32Array.from({ length: 4 * H }, (_, i) => Math.sin(i * 0.37) * 0.5);
  const prompt = embeds.slice(0, 3 * H);
  const step = embeds.slice(3 * H);
  const a = await holed.forward(prompt, [1, 1, 1], holed.emptyCache(1));
  for (const t of Object.values(a.cache.tensors)) {
    const [, heads, capacity, D] = t.dims;
    const data = t.data as Float32Array | Uint16Array;
    // 2 (0x4000 as float16) in every position past the prompt, of every row and head: a graph that attends to them
    // moves its logits far past the tolerance, and 2 keeps the scores finite even in float16
    for (let bh = 0; bh < t.dims[0] * heads; bh++) data.fill(data instanceof Uint16Array ? 0x4000 : 2, (bh * capacity + 3) * D, (bh + 1) * capacity * D);
  }
  const holedStep = await holed.forward(step, [1, 1, 1, 1], a.cache);
  const b = await growing.forward(prompt, [1, 1, 1], growing.emptyCache(1));
  const growingStep = await growing.forward(step, [1, 1, 1, 1], b.cache);
  let difference = 0;
  let scale = 1;
  for (let i = 0; i < growingStep.logits.length; i++) {
    difference = Math.max(difference, Math.abs(holedStep.logits[i] - growingStep.logits[i]));
    scale = Math.max(scale, Math.abs(growingStep.logits[i]));
  }
  difference /= scale;
  return { agree: difference <= tolerance && Number.isFinite(difference), difference };
}

/** `cache` if it is in place with room for `total` positions, else an in-place copy with room to grow. */
function withCapacity(cache: KvCache, total: number, growth: DecoderTuning['inPlaceGrowth'] = { positions: IN_PLACE_GROWTH }): KvCache {
  if (cache.capacity !== undefined && total <= cache.capacity) return cache;
  const capacity = Math.max(total + growth.positions, growth.doubling ? 2 * (cache.capacity ?? 0) : 0);
  const tensors: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(cache.tensors)) tensors[name] = resized(t, cache.length, capacity);
  return { length: cache.length, batch: cache.batch, tensors, capacity };
}

function presentName(pastName: string): string {
  return pastName.replace(/^past_key_values\./, 'present.');
}

function newKvName(pastName: string): string {
  return pastName.replace(/^past_key_values\./, NEW_KV_PREFIX);
}

/**
 * Writes `fresh` into `cache` [B, heads, capacity, D] at positions from..from + T: `fresh` as a fast graph returns
 * it, [B, T, heads * D], or as a Hub graph's Concat takes it, [B, heads, T, D].
 */
function appendPositions(cache: ort.Tensor, fresh: ort.Tensor, from: number): void {
  const [B, H, capacity, D] = cache.dims;
  const headsFirst = fresh.dims.length === 4;
  const T = headsFirst ? fresh.dims[2] : fresh.dims[1];
  const dst = cache.data as Float32Array | Uint16Array;
  const src = fresh.data as Float32Array | Uint16Array;
  if (src.constructor !== dst.constructor) throw new Error(`new keys and values of type ${fresh.type} for a ${cache.type} cache`);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const to = ((b * H + h) * capacity + from) * D;
      if (headsFirst) {
        const at = (b * H + h) * T * D;
        dst.set(src.subarray(at, at + T * D), to);
        continue;
      }
      for (let t = 0; t < T; t++) {
        const at = ((b * T + t) * H + h) * D;
        dst.set(src.subarray(at, at + D), to + t * D);
      }
    }
  }
}

/**
 * position_ids = cumsum(attention_mask) - 1, with padded positions set to 1 (as HF and transformers.js
 * do), keeping the last T columns.  mask [B, total] -> [B, T]
 */
export function positionIds(mask: BigInt64Array, B: number, total: number, T: number): BigInt64Array {
  const out = new BigInt64Array(B * T);
  for (let b = 0; b < B; b++) {
    let sum = 0n;
    for (let j = 0; j < total; j++) {
      const m = mask[b * total + j];
      const pos = m === 0n ? 1n : sum;
      sum += m;
      if (j >= total - T) out[b * T + (j - (total - T))] = pos;
    }
  }
  return out;
}
