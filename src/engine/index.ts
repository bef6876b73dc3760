// Inference, and only inference: loadModel() -> LlavaModel (folder reader, preprocessing, tokenizer,
// prompt, ONNX sessions, decode loop, sampler, batching). The CLI, the forked engine process,
// captioning, tests and benchmarks all use exactly this door. Imports core only (plus onnxruntime-node
// and sharp, which nothing else may load); never vscode, the hub, captioning or the process boundary.

import { createHash } from 'node:crypto';
import { statSync } from 'node:fs';
import * as path from 'node:path';
import { checkContextFits, turnCuts } from './context';
import { decodeLoop, DEFAULT_MAX_NEW_TOKENS, type PreparedPrompt } from './generate';
import { generateBatch, type BatchEvent, type BatchRequest } from './batch';
import { holesAgree, LanguageModel } from './decoder';
import { DeviceCopier } from './deviceCopy';
import { throwIfAborted } from '../core';
import { chooseVariants, onnxFile, readModelFolder, type ModelSpec } from './modelFolder';
import { defaultCpuThreads } from './cpuThreads';
import { createSession, releaseAll, type Session } from './onnx';
import { preprocessImage } from './preprocess';
import { buildPromptIds, renderPrompt } from './prompt';
import { sessionOptions, withProviderFallback } from './providers';
import { loadTokenizer, TextStreamer, type Tokenizer } from './tokenizer';
import type {
  ChatTurn,
  VariantChoice,
  ExecutionProvider,
  ExecutionProviderChoice,
  GenerateOptions,
  GenerationEvent,
  ImageGeometry,
  ImageInput,
  LoadedModelInfo,
  PreprocessedImage,
  PreprocessMode,
  PromptFormatName,
} from '../core';
import { EmbeddingRows } from './embedRows';
import { VisionEncoder, type ImageFeatures } from './vision';
import { DEFAULT_PREFIX_CACHE_BYTES, PrefixCache, type PrefixKey } from './prefixCache';

export * from '../core';
export * from '../core';
export type { BatchEvent, BatchRequest } from './batch';

export interface LoadOptions {
  provider?: ExecutionProviderChoice;
  /**
   * pins the variant of every part (`'q4'`) or of some parts (`{vision: 'fp16', decoder: 'q4'}`);
   * the parts not named take the provider's preference among the files the folder holds
   */
  variant?: VariantChoice;
  threads?: number;
  overrides?: { preprocessMode?: PreprocessMode; promptFormat?: PromptFormatName };
  /** bytes of KV cache kept for follow-up questions (0 turns reuse off); default 512 MiB */
  prefixCacheBytes?: number;
  /**
   * a part with inline weights (a decoder over 16 MiB, another part over 128 MiB) is loaded from a copy split into
   * graph + aligned weights, made once in `.llava-external/` beside it (faster loads; the decoder's logits for the
   * last position only); costs the file's size again on disk; default true
   */
  splitWeights?: boolean;
  /**
   * an embed_tokens graph that is a plain table lookup is read row by row from its file (the table stays out of
   * memory) instead of run as a session; default true
   */
  embeddingRows?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

export async function loadModel(dir: string, opts: LoadOptions = {}): Promise<LlavaModel> {
  const log = opts.log ?? (() => {});
  const started = performance.now();
  const spec = await readModelFolder(dir, { overrides: opts.overrides });
  throwIfAborted(opts.signal);
  const tokenizer = loadTokenizer(spec);
  // left to us: the physical cores, passed explicitly so that ONNX Runtime does not pin its threads (cpuThreads.ts)
  const threads = opts.threads && opts.threads > 0 ? opts.threads : defaultCpuThreads();

  const { value, provider, fallbackReason } = await withProviderFallback(
    opts.provider ?? 'auto',
    async (ep) => {
      const variants = chooseVariants(spec, ep, opts.variant);
      const options = sessionOptions(ep, { threads });
      // WebGPU: the decoder's present.* stay in GPU memory between runs (named from config.json's layer count),
      // and so do its logits, of which only the last row is copied to the host
      const presents = ep === 'webgpu' && spec.text.numLayers ? [...presentNames(spec.text.numLayers), 'logits'] : [];
      const decoderOptions = presents.length ? sessionOptions(ep, { threads }, presents) : options;
      const copier = presents.length ? new DeviceCopier(options) : undefined;
      const files = {
        vision: onnxFile(spec, 'vision_encoder', variants.vision).path,
        embed: onnxFile(spec, 'embed_tokens', variants.embed).path,
        decoder: onnxFile(spec, 'decoder_model_merged', variants.decoder).path,
      };
      const sessions: Session[] = [];
      // a plain lookup table is read row by row from its file instead of held by a session (embedRows.ts)
      const rows = opts.embeddingRows === false ? undefined : EmbeddingRows.open(files.embed);
      try {
        const load = async (file: string) => {
          throwIfAborted(opts.signal);
          const t = performance.now();
          const decoder = file === files.decoder;
          const s = await createSession(file, decoder ? decoderOptions : options, { view: decoder ? 'decoder' : 'file', log, split: opts.splitWeights === false ? false : {} });
          sessions.push(s);
          log(`loaded ${path.relative(dir, file)} on ${ep} in ${Math.round(performance.now() - t)} ms`);
          return s;
        };
        const vision = new VisionEncoder(await load(files.vision), files.vision);
        const embed = rows ?? (await load(files.embed));
        if (rows) log(`${path.relative(dir, files.embed)}: ${rows.table.rows} x ${rows.table.cols} embedding rows read from the file as needed`);
        const decoderSession = await load(files.decoder);
        const hints = { numKvHeads: spec.text.numKvHeads, headDim: spec.text.headDim };
        const tuning = { wholePrefill: DYNAMIC_8BIT_VARIANTS.has(variants.decoder), ...(copier ? { deviceCopier: copier } : {}) };
        let lm = new LanguageModel(embed, decoderSession, files, hints, tuning);
        if (lm.holedKv) {
          // the edited graph's preallocated cache, checked once against the graph's own growing one (holesAgree)
          const t = performance.now();
          const growing = new LanguageModel(embed, decoderSession, files, hints, { ...tuning, inPlaceKv: false });
          const check = await holesAgree(lm, growing, lm.kvType === 'float16' ? 2e-2 : 1e-3);
          const name = path.relative(dir, files.decoder);
          if (check.agree) log(`${name}: KV cache preallocated, its masked positions checked in ${Math.round(performance.now() - t)} ms (logits within ${check.difference.toExponential(1)} of the growing cache)`);
          else {
            log(`${name}: masked cache positions moved the logits by ${check.difference.toExponential(1)} of their largest; the cache grows by a copy every step instead`);
            lm = growing;
          }
        }
        return { vision, lm, sessions, variants };
      } catch (err) {
        rows?.close();
        await releaseAll(sessions);
        await copier?.release();
        throw err;
      }
    },
    log,
  );
  const info: LoadedModelInfo = {
    dir,
    modelType: spec.modelType,
    provider,
    fallbackReason,
    variants: value.variants,
    ...(spec.contextLength !== undefined ? { contextLength: spec.contextLength } : {}),
    imageTokensPerImage: 0,
    promptFormat: spec.promptFormat,
    loadMs: Math.round(performance.now() - started),
    kvCache: value.lm.deviceKv ? 'on the GPU' : value.lm.inPlaceKv || value.lm.holedKv ? 'in-place' : 'growing',
    logits: value.lm.lastLogitsOnly ? 'last position' : 'every position',
    embeddings: value.lm.embeddings,
    cpuThreads: threads ?? 'onnxruntime default',
  };
  log(`model ready in ${info.loadMs} ms: ${spec.modelType}, ${provider}, variants ${JSON.stringify(value.variants)}, KV cache ${info.kvCache}, logits of ${info.logits === 'last position' ? 'the last position only' : 'every position'}, embeddings from ${info.embeddings === 'session' ? 'a session' : 'the file'}, CPU threads ${threads ?? "ONNX Runtime's default"}`);
  return new LlavaModel(spec, tokenizer, value.vision, value.lm, value.sessions, info, opts.prefixCacheBytes ?? DEFAULT_PREFIX_CACHE_BYTES);
}

/** The decoder's cache outputs, as llava-hf / transformers.js exports name them. */
function presentNames(layers: number): string[] {
  return Array.from({ length: layers }, (_, i) => [`present.${i}.key`, `present.${i}.value`]).flat();
}

const FEATURE_CACHE_SIZE = 8;
/** decoder variants whose activations are quantized per run (see DecoderTuning.wholePrefill) */
const DYNAMIC_8BIT_VARIANTS: ReadonlySet<string> = new Set(['int8', 'uint8', 'quantized']);

interface EncodedImage {
  /** content identity (path + size + mtime, or a hash of the bytes); undefined for pixel inputs */
  key: string | undefined;
  features: ImageFeatures;
  /** how the original image became the model's input: grounding maps boxes back with it */
  geometry: ImageGeometry;
}

export class LlavaModel {
  /** image features by image key, so later turns of a conversation do not re-encode earlier images */
  private readonly featureCache = new Map<string, EncodedImage>();
  /** KV caches of earlier runs, so a follow-up prefills only its new tokens */
  private readonly prefixCache: PrefixCache;
  private busy: Promise<void> = Promise.resolve();
  /**
   * How generateBatch prefills its prompts: each row alone on a CPU (compute-bound: a batch gains no speed there
   * and would hold every row's activations at once), together elsewhere (batch.ts)
   */
  batchPrefill: 'rows' | 'together';

  constructor(
    readonly spec: ModelSpec,
    readonly tokenizer: Tokenizer,
    private readonly vision: VisionEncoder,
    private readonly lm: LanguageModel,
    private readonly sessions: Session[],
    readonly info: LoadedModelInfo,
    prefixCacheBytes = DEFAULT_PREFIX_CACHE_BYTES,
  ) {
    this.prefixCache = new PrefixCache(prefixCacheBytes);
    this.batchPrefill = info.provider === 'cpu' ? 'rows' : 'together';
  }

  preprocess(image: ImageInput): Promise<PreprocessedImage> {
    if ('preprocessed' in image) return Promise.resolve(image.preprocessed);
    return preprocessImage(image, this.spec.preprocess);
  }

  /** Prompt ids exactly as the decoder sees them (image tokens expanded). */
  async promptIds(turns: ChatTurn[], opts: GenerateOptions = {}): Promise<number[]> {
    const release = await this.acquire();
    try {
      return (await this.prepare(turns, opts)).ids;
    } finally {
      release();
    }
  }

  /**
   * Logits [vocab] f32 of the token that would follow the prompt (after any answerPrefix). Scores
   * multiple-choice answers (evaluation) and lets tests compare against a reference implementation.
   */
  async nextTokenLogits(turns: ChatTurn[], opts: GenerateOptions = {}): Promise<Float32Array> {
    const release = await this.acquire();
    try {
      const prompt = await this.prepare(turns, opts, 1);
      const step = await this.lm.forward(prompt.embeds, new Array(prompt.ids.length).fill(1), this.lm.emptyCache(1));
      this.lm.release(step.cache);
      return step.logits;
    } finally {
      release();
    }
  }

  /**
   * Streams the answer to the last user turn. Runs are serialised: one model, one decode at a time.
   * Aborting ends the stream with stopReason 'aborted' and the text so far.
   */
  async *generate(turns: ChatTurn[], opts: GenerateOptions = {}): AsyncGenerator<GenerationEvent> {
    const release = await this.acquire();
    try {
      const startedAt = performance.now();
      const prompt = await this.prepare(turns, opts, opts.maxNewTokens ?? DEFAULT_MAX_NEW_TOKENS);
      const reuse = this.prefixCache.lookup(prompt.keys);
      const loop = decodeLoop(
        {
          lm: this.lm,
          eosTokenIds: new Set(this.spec.generation.eosTokenIds),
          detokenizer: TextStreamer.continuing(this.tokenizer, opts.answerPrefix),
          prefixText: opts.answerPrefix,
          // generated ids follow the prompt's keys; an aborted run's cache is as valid as any
          keepCache: (cache, history) => this.prefixCache.store([...prompt.keys, ...history.slice(prompt.ids.length)], cache),
        },
        { ...prompt, reuse },
        opts,
        startedAt,
      );
      // The done event carries each image's geometry so callers can map boxes back onto the originals.
      for await (const ev of loop) {
        if (ev.type !== 'done') yield ev;
        else yield { ...ev, images: prompt.geometries, ...(prompt.droppedTurns ? { stats: { ...ev.stats, droppedTurns: prompt.droppedTurns } } : {}) };
      }
    } finally {
      release();
    }
  }

  /**
   * Several independent requests decoded together (left-padded batch, see batch.ts); greedy rows give the
   * same tokens as generate() one by one. Serialised with generate() like any other run.
   */
  async *generateBatch(requests: BatchRequest[], opts: GenerateOptions = {}): AsyncGenerator<BatchEvent> {
    const release = await this.acquire();
    try {
      yield* generateBatch(
        { spec: this.spec, tokenizer: this.tokenizer, lm: this.lm, vision: this.vision, preprocess: (image) => this.preprocess(image), prefill: this.batchPrefill },
        requests,
        opts,
      );
    } finally {
      release();
    }
  }

  /** Waits for the runs queued before this one; call the returned function when done. One model, one run at a time. */
  private async acquire(): Promise<() => void> {
    const previous = this.busy;
    let release!: () => void;
    this.busy = new Promise<void>((r) => (release = r));
    await previous;
    return release;
  }

  async dispose(): Promise<void> {
    this.featureCache.clear();
    this.prefixCache.clear();
    await this.lm.close();
    await releaseAll(this.sessions);
  }

  private async prepare(
    turns: ChatTurn[],
    opts: GenerateOptions,
    maxNewTokens = 0,
  ): Promise<PreparedPrompt & { geometries: ImageGeometry[]; keys: PrefixKey[]; droppedTurns: number }> {
    const imagesOf = (t: ChatTurn) => (t.role === 'user' ? (t.images ?? []) : []);
    const images = turns.flatMap(imagesOf);
    // every image is encoded (and its geometry returned, one per image of `turns`, in order) even
    // when its turn is later left out to fit the context: callers index geometries by position
    const encoded = await this.encodeImages(images, opts.signal);
    const cuts = opts.fitContext === 'dropOldestTurns' ? turnCuts(turns) : [0];
    let prompt!: { ids: number[]; imageSpans: { start: number; length: number }[] };
    let features!: ImageFeatures[];
    let keptImages!: EncodedImage[];
    let cut = 0;
    for (const [k, c] of cuts.entries()) {
      const kept = turns.slice(c);
      const skipImages = turns.slice(0, c).reduce((n, t) => n + imagesOf(t).length, 0);
      keptImages = encoded.slice(skipImages);
      features = keptImages.map((e) => e.features);
      const text = renderPrompt(this.spec, kept, { addGenerationPrompt: true, answerPrefix: opts.answerPrefix });
      prompt = buildPromptIds(this.tokenizer, this.spec, text, features.map((f) => f.rows));
      cut = c;
      const last = k === cuts.length - 1;
      const fits = this.spec.contextLength === undefined || prompt.ids.length + maxNewTokens <= this.spec.contextLength;
      if (fits || last) break;
    }
    checkContextFits(prompt.ids.length, maxNewTokens, this.spec.contextLength);
    const { ids, imageSpans } = prompt;
    throwIfAborted(opts.signal);
    const embeds = await this.lm.embed(ids); // [T, hidden]
    const hidden = this.lm.hidden;
    imageSpans.forEach((span, i) => {
      const f = features[i];
      if (f.hidden !== hidden) throw new Error(`image features have ${f.hidden} columns but the decoder's hidden size is ${hidden}`);
      embeds.set(f.data, span.start * hidden); // rows [start, start + length) of [T, hidden]
    });
    this.info.imageTokensPerImage = features[0]?.rows ?? this.info.imageTokensPerImage;
    // what the decoder sees at each position: the token id, or for image rows the image's identity
    const keys: PrefixKey[] = [...ids];
    imageSpans.forEach((span, i) => keys.fill(`image:${keptImages[i].key ?? `unkeyed:${++unkeyedImages}`}`, span.start, span.start + span.length));
    return {
      ids,
      embeds,
      imageTokens: features.reduce((n, f) => n + f.rows, 0),
      geometries: encoded.map((e) => e.geometry),
      keys,
      droppedTurns: cut,
    };
  }

  private async encodeImages(images: ImageInput[], signal?: AbortSignal): Promise<EncodedImage[]> {
    const result: EncodedImage[] = new Array(images.length);
    const missing: { index: number; key: string | undefined; pixels: PreprocessedImage }[] = [];
    for (let i = 0; i < images.length; i++) {
      throwIfAborted(signal);
      const key = imageKey(images[i]);
      const cached = key ? this.featureCache.get(key) : undefined;
      if (cached) result[i] = cached;
      else missing.push({ index: i, key, pixels: await this.preprocess(images[i]) });
    }
    if (missing.length) {
      const encoded = await this.vision.encode(missing.map((m) => m.pixels));
      missing.forEach((m, j) => {
        result[m.index] = { key: m.key, features: encoded[j], geometry: m.pixels.geometry };
        if (m.key) this.remember(m.key, result[m.index]);
      });
    }
    return result;
  }

  private remember(key: string, encoded: EncodedImage): void {
    this.featureCache.delete(key);
    this.featureCache.set(key, encoded);
    while (this.featureCache.size > FEATURE_CACHE_SIZE) this.featureCache.delete(this.featureCache.keys().next().value!);
  }
}

let unkeyedImages = 0;

/**
 * A content key for an image: path + size + mtime for files, a hash of the bytes for in-memory images
 * (the chat sends bytes). Pixel inputs have none (they are neither feature-cached nor prefix-reused).
 */
function imageKey(image: ImageInput): string | undefined {
  // a downscaled copy is other pixels than the original: its own key
  const copy = 'downscale' in image && image.downscale ? ':downscaled' : '';
  if ('bytes' in image) return `sha1:${createHash('sha1').update(image.bytes).digest('hex')}${copy}`;
  if ('preprocessed' in image) return image.key === undefined ? undefined : `given:${image.key}`;
  if ('path' in image) {
    try {
      const st = statSync(image.path);
      return `${image.path}:${st.size}:${st.mtimeMs}${copy}`;
    } catch {
      return undefined; // preprocessing will report the real error
    }
  }
  return undefined;
}

export { chooseVariants, readModelFolder, type ModelSpec } from './modelFolder';
export type { ExecutionProvider };
