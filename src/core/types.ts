// Types shared by the engine's stages and by its callers (CLI, engine process, extension, bench).
// Plain data only: everything here must survive structured cloning across the process boundary.

/** How an image becomes the model's square (or fixed-size) input. */
export type PreprocessMode =
  /** resize shortest edge to `size`, then centre-crop `cropSize` (CLIP, llava-1.5-hf) */
  | 'crop'
  /** resize straight to width x height, aspect ratio not kept (SigLIP, nanoLLaVA) */
  | 'resize'
  /** pad to a centred square with the mean colour, then resize (original LLaVA-1.5 `expand2square`) */
  | 'pad';

export interface PreprocessConfig {
  mode: PreprocessMode;
  /** model input size after resize (and crop) */
  width: number;
  height: number;
  /** shortest-edge target for 'crop' (before cropping to width x height) */
  shortestEdge?: number;
  /** per-channel, applied after rescale: (x * rescaleFactor - mean) / std */
  mean: [number, number, number];
  std: [number, number, number];
  rescaleFactor: number;
  /** RGB 0..255 fill for 'pad'; defaults to round-down(mean * 255) like LLaVA's expand2square */
  padColor?: [number, number, number];
  /** Pillow resample filter (`resample` in preprocessor_config.json): 0 nearest, 2 bilinear, 3 bicubic (default) */
  resample?: number;
}

/**
 * Where the model's input pixels came from. For an original (EXIF-oriented) pixel (x, y):
 *   inputX = (x + padLeft) * scaleX - cropLeft
 *   inputY = (y + padTop)  * scaleY - cropTop
 * Grounding inverts this to map model boxes back onto the original image.
 */
export interface ImageGeometry {
  mode: PreprocessMode;
  /** size after EXIF orientation, before anything else */
  originalWidth: number;
  originalHeight: number;
  /**
   * Set when the model saw a downscaled copy (the image was over the pixel or side limit and the
   * caller allowed `downscale`): the copy's size. Every other field still refers to the original
   * image, so boxes map onto the image the user sees.
   */
  downscaledTo?: { width: number; height: number };
  /** the tensor's spatial size */
  inputWidth: number;
  inputHeight: number;
  padLeft: number;
  padTop: number;
  scaleX: number;
  scaleY: number;
  cropLeft: number;
  cropTop: number;
}

export interface PreprocessedImage {
  /** [3, inputHeight, inputWidth] f32, CHW, normalised */
  pixelValues: Float32Array;
  geometry: ImageGeometry;
}

/** Execution providers the engine knows how to ask onnxruntime-node for. */
export type ExecutionProvider = 'cuda' | 'dml' | 'coreml' | 'webgpu' | 'cpu';
export type ExecutionProviderChoice = 'auto' | ExecutionProvider;
/** Every value of `llava.executionProvider` / `--provider`, in the order they are offered. */
export const EXECUTION_PROVIDER_CHOICES: readonly ExecutionProviderChoice[] = ['auto', 'cuda', 'dml', 'coreml', 'webgpu', 'cpu'];

/** ONNX file suffix of the transformers.js layout: '' is fp32. */
export type DtypeVariant = 'fp32' | 'fp16' | 'q4' | 'q4f16' | 'int8' | 'uint8' | 'quantized' | 'bnb4';

/** Where a model writes boxes, see grounding.ts. A property of the model entry, never an if on its name. */
export type BoxFrame = 'norm1' | 'norm1000' | 'input_pixels' | 'loc_tokens';

export type PromptFormatName = 'vicuna_v1' | 'chatml';

export interface ChatTurn {
  role: 'user' | 'assistant';
  text: string;
  /** images attached to this user turn, in order; each becomes one `<image>` placeholder */
  images?: ImageInput[];
}

/**
 * An image by path, by bytes, or already preprocessed (parity tests and batch pipelines feed
 * pixel values directly). `name` is used in error messages.
 */
export type ImageInput =
  /** `root`: when given, the file's real path (symbolic links resolved) must stay inside this folder */
  | { path: string; root?: string; downscale?: boolean }
  /**
   * `downscale` (here and on `path`): an image over the pixel or longest-side limit is not refused
   * but decoded as a copy whose longest side is at most DOWNSCALE_SIDE (4096) px, aspect kept, within a
   * hard ceiling (1 gigapixel, the byte limit); the done event's geometry says so (`downscaledTo`).
   */
  | { bytes: Uint8Array; name: string; downscale?: boolean }
  /** `key`: content identity of these pixels (same key, same pixels), so follow-ups can reuse their cache */
  | { preprocessed: PreprocessedImage; name?: string; key?: string };

export interface SamplingOptions {
  /** 0 or undefined: greedy */
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens?: number;
  signal?: AbortSignal;
  /** text forced at the start of the answer ("start caption with") */
  answerPrefix?: string;
  /**
   * When prompt + image rows + maxNewTokens exceed the decoder's context window: 'error' (default)
   * throws ContextOverflowError; 'dropOldestTurns' leaves out the oldest turns (never the last user
   * turn and its images) until it fits, and `stats.droppedTurns` says how many were left out.
   */
  fitContext?: 'error' | 'dropOldestTurns';
}

export interface GenerationStats {
  promptTokens: number;
  newTokens: number;
  imageTokens: number;
  /** ms from generate() call to first new token (includes image encoding and prefill) */
  timeToFirstTokenMs: number;
  /** new tokens after the first, per second of decode time */
  decodeTokensPerSecond: number;
  totalMs: number;
  stopReason: 'eos' | 'max_tokens' | 'aborted';
  tokenIds: number[];
  /** turns left out at the start of the conversation to fit the context window (fitContext) */
  droppedTurns?: number;
  /** prompt positions whose KV cache came from an earlier run of the same conversation (not prefilled again) */
  reusedPromptTokens?: number;
}

export type GenerationEvent =
  | { type: 'delta'; text: string }
  /** `images`: the geometry of each image in the conversation, in order (LlavaModel.generate fills it) */
  | { type: 'done'; text: string; stats: GenerationStats; images?: ImageGeometry[] };

export interface LoadedModelInfo {
  dir: string;
  modelType: string;
  provider: ExecutionProvider;
  /** why the provider is not the first one tried ('' when it is) */
  fallbackReason: string;
  variants: { vision: DtypeVariant; embed: DtypeVariant; decoder: DtypeVariant };
  /** the decoder's context window in tokens, when the config says */
  contextLength?: number;
  imageTokensPerImage: number;
  promptFormat: string;
  loadMs: number;
  /** how the local decoder keeps its KV cache: in one preallocated buffer appended in place (a `--graph fast` conversion, or a Hub graph the engine edited to return its new keys and values), grown by a copy every step, or kept in GPU memory between steps (WebGPU) */
  kvCache?: 'in-place' | 'growing' | 'on the GPU';
  /** whether a prefill computes the LM head for its last position only (num_logits_to_keep, a fast graph, or the engine's edit of an external-data decoder) or for every position */
  logits?: 'last position' | 'every position';
  /** token embeddings: the table's rows read from the embed_tokens file as needed, or an ONNX Runtime session */
  embeddings?: 'rows read from the file' | 'session';
  /** intra-op CPU threads per session: the user's number, the physical cores counted (unpinned), or ONNX Runtime's own default (pinned) */
  cpuThreads?: number | 'onnxruntime default';
}

/**
 * Referring prompts of one model entry (catalog data). Placeholders: `{phrase}` in `find`,
 * `{region}` in `describeRegion`, and `{x1}` `{y1}` `{x2}` `{y2}` in `region` (frame units).
 */
export interface ReferringPrompts {
  find: string;
  describeRegion: string;
  region: string;
}

/**
 * The name a decoder graph gives the sequence axis of its `past_key_values.*` inputs (and `present.*`
 * outputs) when it can update a preallocated cache in place: onnxruntime's GroupQueryAttention writes the
 * new keys and values into `present` at the positions after the past, and when `present` is the very
 * buffer fed as `past` (same memory) it skips the copy of the whole cache that a concatenating graph
 * makes every step. Such a graph takes a cache longer than the mask (its capacity); only the first
 * `attention_mask` columns count. `llava convert --graph fast` writes it; the engine reads it.
 */
export const IN_PLACE_KV_DIM = 'past_sequence_length_or_capacity';

/**
 * Outputs `<NEW_KV_PREFIX>{i}.key` / `.value` [B, T, kv_heads * head_dim] of such a graph: the keys (after the
 * rotary embedding) and values of the run's own T positions, as GroupQueryAttention writes them into the cache.
 * The engine's edit of a Hub-style decoder (onnxView.ts newKeyValueOutputs) returns the same under these names
 * as [B, kv_heads, T, head_dim], the second input of the Concat that grows its cache.
 * onnxruntime-node copies every fetched output into a new buffer, a preallocated one too, so fetching
 * `present.*` of a cache updated in place costs a copy of the whole cache a step; an engine that fetches these
 * instead appends them to its cache itself and leaves `present.*` unfetched.
 */
export const NEW_KV_PREFIX = 'new_key_values.';
