// Which ONNX weight variant each part of a model uses. Shared facts, because two folders decide the
// same thing from two sources: the hub from a repository's file list (before downloading), the
// engine from a local folder (before loading). Both must pick the same files, so the names, the
// suffixes and the preference orders live here, once. Plain data and pure functions only.

import type { DtypeVariant, ExecutionProvider } from './types';

/** The three ONNX sessions of a transformers.js LLaVA export, by the short name users type. */
export type ModelPart = 'vision' | 'embed' | 'decoder';
export const MODEL_PARTS: readonly ModelPart[] = ['vision', 'embed', 'decoder'];

/** File stem of each part in the transformers.js layout (`onnx/<stem><suffix>.onnx`). */
export const PART_FILE_STEM: Readonly<Record<ModelPart, 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged'>> = {
  vision: 'vision_encoder',
  embed: 'embed_tokens',
  decoder: 'decoder_model_merged',
};

/** File-name suffix of each dtype variant (`fp32` has none). */
export const VARIANT_SUFFIX: Readonly<Record<DtypeVariant, string>> = {
  fp32: '', fp16: '_fp16', q4: '_q4', q4f16: '_q4f16', int8: '_int8', uint8: '_uint8', quantized: '_quantized', bnb4: '_bnb4',
};
export const DTYPE_VARIANTS = Object.keys(VARIANT_SUFFIX) as DtypeVariant[];

/** One variant per part, e.g. `{vision: 'quantized', embed: 'int8', decoder: 'q4'}`. */
export type VariantMap = Record<ModelPart, DtypeVariant>;

/** What a caller may ask for: one variant for every part, or some parts pinned (the rest chosen). */
export type VariantChoice = DtypeVariant | Partial<VariantMap>;

/**
 * Preference when nothing is pinned. CPU: 4-bit first (smallest, fastest on the CPU EP), then the
 * 8-bit kinds, bnb4, then full precision; fp16 weights come last because the CPU EP casts them to
 * fp32 (twice the memory, no speed-up), and q4f16 (fp16 activations) just before them. GPU: half
 * precision first, then full, then the quantized rest.
 */
export const CPU_VARIANT_ORDER: readonly DtypeVariant[] = ['q4', 'int8', 'quantized', 'uint8', 'bnb4', 'fp32', 'q4f16', 'fp16'];
export const GPU_VARIANT_ORDER: readonly DtypeVariant[] = ['fp16', 'q4f16', 'fp32', 'q4', 'bnb4', 'int8', 'quantized', 'uint8'];

export function variantOrder(provider: ExecutionProvider | 'gpu'): readonly DtypeVariant[] {
  return provider === 'cpu' ? CPU_VARIANT_ORDER : GPU_VARIANT_ORDER;
}

/** `onnx/decoder_model_merged_q4.onnx` */
export function onnxPath(part: ModelPart, variant: DtypeVariant): string {
  return `onnx/${PART_FILE_STEM[part]}${VARIANT_SUFFIX[variant]}.onnx`;
}

/** The variant of an `onnx/<stem><suffix>.onnx` path, or undefined for any other file. */
export function parseOnnxPath(path: string): { part: ModelPart; variant: DtypeVariant } | undefined {
  for (const part of MODEL_PARTS) {
    for (const variant of DTYPE_VARIANTS) {
      if (path === onnxPath(part, variant)) return { part, variant };
    }
  }
  return undefined;
}

/**
 * Picks one variant per part from what exists. `pinned` parts must exist (else the message says
 * what does); the others take the variant the model declares for itself (`declared`, from its
 * config: declaredVariants) when that file exists, else the first available variant in the
 * provider's order. Returns the map, or the first part that cannot be satisfied with a one-line reason.
 */
export function choosePartVariants(
  available: Readonly<Record<ModelPart, readonly DtypeVariant[]>>,
  provider: ExecutionProvider | 'gpu',
  pinned: VariantChoice | undefined,
  declared: Partial<VariantMap> = {},
): { variants: VariantMap } | { part: ModelPart; variant?: DtypeVariant; reason: string } {
  const order = variantOrder(provider);
  const want = normaliseChoice(pinned);
  const out = {} as VariantMap;
  for (const part of MODEL_PARTS) {
    const have = available[part];
    const listing = have.length ? have.join(', ') : 'none';
    const asked = want[part];
    if (asked) {
      if (!have.includes(asked)) return { part, variant: asked, reason: `variant ${asked} of ${part} (${onnxPath(part, asked)}) does not exist; ${part} has: ${listing}` };
      out[part] = asked;
      continue;
    }
    const own = declared[part];
    if (own && have.includes(own)) {
      out[part] = own;
      continue;
    }
    const first = order.find((v) => have.includes(v));
    if (!first) return { part, reason: `no variant of ${part} (${PART_FILE_STEM[part]}*.onnx) exists` };
    out[part] = first;
  }
  return { variants: out };
}

/** transformers.js's names for the dtypes (`q8` is the `_quantized` file); `auto` and unknown names declare nothing. */
const TRANSFORMERS_JS_DTYPE: Readonly<Record<string, DtypeVariant>> = {
  fp32: 'fp32', fp16: 'fp16', q8: 'quantized', int8: 'int8', uint8: 'uint8', q4: 'q4', q4f16: 'q4f16', bnb4: 'bnb4',
};

/**
 * The variants a model declares as its own default, in the fields transformers.js reads from config.json:
 * `transformers.js_config.dtype`, one dtype for every file or one per file stem (`{"vision_encoder": "fp32",
 * "decoder_model_merged": "q4"}`), replaced for a device by `transformers.js_config.device_config.<device>.dtype`
 * when that device has one. Anything malformed declares nothing: a config is the model author's, not ours.
 */
export function declaredVariants(config: unknown, device: ExecutionProvider | 'gpu'): Partial<VariantMap> {
  const own = (config as Record<string, unknown> | undefined)?.['transformers.js_config'];
  if (!own || typeof own !== 'object') return {};
  const js = own as { dtype?: unknown; device_config?: unknown };
  const perDevice = js.device_config && typeof js.device_config === 'object' ? (js.device_config as Record<string, unknown>)[device] : undefined;
  const dtype = perDevice && typeof perDevice === 'object' && 'dtype' in perDevice ? (perDevice as { dtype: unknown }).dtype : js.dtype;
  const named = (v: unknown) => (typeof v === 'string' && Object.prototype.hasOwnProperty.call(TRANSFORMERS_JS_DTYPE, v) ? TRANSFORMERS_JS_DTYPE[v] : undefined);
  const out: Partial<VariantMap> = {};
  for (const part of MODEL_PARTS) {
    const v = typeof dtype === 'string' ? named(dtype) : dtype && typeof dtype === 'object' ? named((dtype as Record<string, unknown>)[PART_FILE_STEM[part]]) : undefined;
    if (v) out[part] = v;
  }
  return out;
}

/** A single variant means every part. */
export function normaliseChoice(choice: VariantChoice | undefined): Partial<VariantMap> {
  if (choice === undefined) return {};
  if (typeof choice === 'string') return { vision: choice, embed: choice, decoder: choice };
  return choice;
}

/**
 * Parses what users type: `auto` (or empty), one variant for all parts (`q4`), or a per-part list
 * `vision=fp16,decoder=q4` (unnamed parts are chosen). Returns the choice or a one-line error.
 */
export function parseVariantChoice(text: string): { choice: VariantChoice | undefined } | { error: string } {
  const t = text.trim();
  if (t === '' || t === 'auto') return { choice: undefined };
  if (!t.includes('=')) {
    return isVariant(t) ? { choice: t } : { error: `unknown variant "${t}" (known: auto, ${DTYPE_VARIANTS.join(', ')})` };
  }
  const out: Partial<VariantMap> = {};
  for (const item of t.split(',')) {
    const [part, variant, extra] = item.split('=').map((s) => s.trim());
    if (extra !== undefined || !part || !variant) return { error: `"${item}" is not PART=VARIANT` };
    if (!(MODEL_PARTS as readonly string[]).includes(part)) return { error: `unknown part "${part}" (parts: ${MODEL_PARTS.join(', ')})` };
    if (variant === 'auto') continue;
    if (!isVariant(variant)) return { error: `unknown variant "${variant}" for ${part} (known: auto, ${DTYPE_VARIANTS.join(', ')})` };
    if (out[part as ModelPart]) return { error: `${part} is named twice` };
    out[part as ModelPart] = variant;
  }
  return { choice: Object.keys(out).length ? out : undefined };
}

/** `vision=fp16,embed=int8,decoder=q4`, or the single name when all parts agree. */
export function formatVariantChoice(choice: VariantChoice | undefined): string {
  if (choice === undefined) return 'auto';
  if (typeof choice === 'string') return choice;
  const parts = MODEL_PARTS.filter((p) => choice[p]);
  if (parts.length === 3 && choice.vision === choice.embed && choice.embed === choice.decoder) return choice.vision!;
  return parts.length ? parts.map((p) => `${p}=${choice[p]}`).join(',') : 'auto';
}

/** Each variant in the words a user chooses by: how big, and where it runs well. */
export const VARIANT_WORDS: Readonly<Record<DtypeVariant, string>> = {
  q4: '4-bit, smallest, for CPUs',
  int8: '8-bit, for CPUs',
  uint8: '8-bit, for CPUs',
  quantized: '8-bit, for CPUs',
  bnb4: '4-bit (bitsandbytes), for CPUs',
  fp32: 'full precision, largest',
  fp16: 'half precision, for GPUs',
  q4f16: '4-bit with half-precision activations, for GPUs',
};

/**
 * The weights a model uses, for people: "4-bit, smallest, for CPUs" when the parts that matter agree (the
 * decoder and vision encoder hold nearly all the weights; the embedding table is often kept in full precision
 * whatever the rest is), else the decoder's words and the vision encoder's after it.
 */
export function describeVariants(variants: VariantMap): string {
  if (variants.vision === variants.decoder) return VARIANT_WORDS[variants.decoder];
  return `${VARIANT_WORDS[variants.decoder]} (image encoder: ${VARIANT_WORDS[variants.vision].split(',')[0]})`;
}

export function isVariant(v: string): v is DtypeVariant {
  return Object.prototype.hasOwnProperty.call(VARIANT_SUFFIX, v);
}
