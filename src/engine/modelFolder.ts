// Reads a Hugging Face Hub-layout model folder (transformers.js ONNX layout) into a ModelSpec: the
// configs, the tokenizer files, the chat template and the ONNX files per session and dtype variant.
// Every failure names the file at fault, so a user can fix a folder without reading our code.

import { readFile, readdir, stat, open } from 'node:fs/promises';
import * as path from 'node:path';
import { choosePartVariants, declaredVariants, ModelFolderError, VARIANT_SUFFIX, type VariantChoice, type VariantMap } from '../core';
import { preprocessConfigFromHub } from './preprocess';
import type { DtypeVariant, ExecutionProvider, PreprocessConfig, PreprocessMode, PromptFormatName } from '../core';

type Json = Record<string, unknown>;

export type OnnxSessionName = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged';
export const ONNX_SESSIONS: readonly OnnxSessionName[] = ['vision_encoder', 'embed_tokens', 'decoder_model_merged'];

/** File-name suffix of each dtype variant in the transformers.js layout (`onnx/<session><suffix>.onnx`). */
export { VARIANT_SUFFIX };

export interface OnnxFile {
  variant: DtypeVariant;
  path: string;
  bytes: number;
  /** external-data companions (`<name>.onnx_data`, `<name>.onnx_data_1`, ...) that ORT must find beside it */
  externalData: string[];
  /** the file is a Git LFS pointer (the weights were never fetched); never chosen by default */
  lfsPointer: boolean;
}

/**
 * Text-model sizes from config.json. FALLBACK ONLY: the engine takes tensor shapes from the ONNX sessions'
 * input metadata first. Hub configs omit every value equal to the config class's default (llava-1.5-7b-hf's
 * text_config has no hidden size, layer or head counts), so missing values come from TEXT_DEFAULTS.
 */
export interface TextSpec {
  modelType: string;
  hiddenSize?: number;
  intermediateSize?: number;
  numLayers?: number;
  numHeads?: number;
  numKvHeads?: number;
  headDim?: number;
  vocabSize?: number;
}

export interface GenerationSpec {
  eosTokenIds: number[];
  bosTokenId?: number;
  padTokenId?: number;
}

export interface ModelSpec {
  dir: string;
  modelType: string;
  config: Json;
  preprocessorConfig: Json;
  processorConfig?: Json;
  generationConfig?: Json;
  text: TextSpec;
  vision: { imageSize?: number; patchSize?: number };
  imageTokenId: number;
  imageToken: string;
  /** processor_config's num_additional_image_tokens (1 for llava-1.5-hf: the CLS row). Informational only:
   *  the engine expands `<image>` to the vision encoder's real output rows, never to this arithmetic. */
  numAdditionalImageTokens?: number;
  preprocess: PreprocessConfig;
  tokenizerJson: Json;
  tokenizerConfig: Json;
  chatTemplate?: string;
  promptFormat: PromptFormatName | 'template';
  generation: GenerationSpec;
  /** the decoder's context window in tokens: the text config's max_position_embeddings, else the
   *  model config's own; undefined when neither says (then nothing is checked) */
  contextLength?: number;
  onnx: Record<OnnxSessionName, OnnxFile[]>;
}

export interface ReadModelFolderOptions {
  overrides?: { preprocessMode?: PreprocessMode; promptFormat?: PromptFormatName };
}

/**
 * The llava family members this engine can run (one vision encoder output spliced into a decoder's
 * embeddings). `flatText`: the text model's keys live at the top level of config.json (trust_remote_code
 * LlavaQwen2Config extends Qwen2Config) instead of under text_config. `textType`: text_config.model_type
 * when the config omits it (the config class's default text config).
 */
const MODEL_TYPES: Readonly<Record<string, { textType: string; flatText: boolean }>> = {
  llava: { textType: 'llama', flatText: false },
  llava_onevision: { textType: 'qwen2', flatText: false },
  llava_qwen2: { textType: 'qwen2', flatText: true },
  'llava-qwen2': { textType: 'qwen2', flatText: true },
};

/** Defaults of transformers' LlamaConfig / Qwen2Config / MistralConfig, for keys a Hub config omits. */
const TEXT_DEFAULTS: Readonly<Record<string, Required<Omit<TextSpec, 'modelType' | 'headDim' | 'numKvHeads'>> & { numKvHeads?: number }>> = {
  llama: { hiddenSize: 4096, intermediateSize: 11008, numLayers: 32, numHeads: 32, vocabSize: 32000 },
  qwen2: { hiddenSize: 4096, intermediateSize: 22016, numLayers: 32, numHeads: 32, numKvHeads: 32, vocabSize: 151936 },
  mistral: { hiddenSize: 4096, intermediateSize: 14336, numLayers: 32, numHeads: 32, numKvHeads: 8, vocabSize: 32000 },
};

export async function readModelFolder(dir: string, opts: ReadModelFolderOptions = {}): Promise<ModelSpec> {
  const config = (await readJson(dir, 'config.json'))!;
  const modelType = str(config.model_type);
  const family = modelType === undefined ? undefined : MODEL_TYPES[modelType];
  if (!family) {
    throw new ModelFolderError('config.json', `model_type ${JSON.stringify(config.model_type)} is not supported: this engine runs ${Object.keys(MODEL_TYPES).join(', ')}`);
  }

  const [preprocessorConfig, processorConfig, generationConfig, tokenizerJson, tokenizerConfigFile, specialTokensMap] = await Promise.all([
    readJson(dir, 'preprocessor_config.json'), readJson(dir, 'processor_config.json', true), readJson(dir, 'generation_config.json', true),
    readJson(dir, 'tokenizer.json'), readJson(dir, 'tokenizer_config.json', true), readJson(dir, 'special_tokens_map.json', true),
  ]);
  // transformers.js reads special tokens from tokenizer_config.json; older folders keep them in special_tokens_map.json.
  const tokenizerConfig: Json = { ...(specialTokensMap ?? {}), ...(tokenizerConfigFile ?? {}) };
  const vocab = new TokenTable(tokenizerJson!);

  const textConfig = family.flatText ? config : ((config.text_config as Json | undefined) ?? {});
  const text = resolveText(textConfig, family.textType);
  const visionConfig = (config.vision_config as Json | undefined) ?? {};
  const vision = { imageSize: num(visionConfig.image_size), patchSize: num(visionConfig.patch_size) };

  // Image token: the id from config.json, the string from the processor / tokenizer config or the vocabulary.
  const imageTokenId = num(config.image_token_index) ?? num(config.image_token_id);
  if (imageTokenId === undefined) throw new ModelFolderError('config.json', 'neither image_token_index nor image_token_id is set');
  const tokenAtId = vocab.token(imageTokenId);
  if (tokenAtId === undefined) {
    throw new ModelFolderError('config.json', `image_token_index ${imageTokenId} is not a token of tokenizer.json (${vocab.size} tokens); ` +
      'negative ids are placeholders of the original LLaVA code, not of the transformers.js layout');
  }
  const imageToken = tokenText(processorConfig?.image_token) ?? tokenText(tokenizerConfig.image_token) ?? tokenAtId;
  if (vocab.id(imageToken) !== imageTokenId) {
    const culprit = tokenText(processorConfig?.image_token) !== undefined ? 'processor_config.json' : 'tokenizer_config.json';
    throw new ModelFolderError(culprit, `image token ${JSON.stringify(imageToken)} is id ${vocab.id(imageToken)} in tokenizer.json, but config.json says ${imageTokenId}`);
  }
  // Embedding rows may be padded beyond the tokenizer (32064 vs 32002): fine. Fewer rows than tokens is not.
  if (text.vocabSize !== undefined && text.vocabSize < vocab.size) {
    throw new ModelFolderError('config.json', `vocab_size ${text.vocabSize} is smaller than tokenizer.json's ${vocab.size} tokens: ids past the embedding table cannot be embedded`);
  }

  const preprocess = readPreprocess(preprocessorConfig!, opts.overrides?.preprocessMode ?? (config.image_aspect_ratio === 'pad' ? 'pad' : undefined));
  // The ONNX vision encoders have fixed position embeddings: an input size other than the training size fails.
  if (vision.imageSize !== undefined && (preprocess.width !== vision.imageSize || preprocess.height !== vision.imageSize)) {
    throw new ModelFolderError('preprocessor_config.json', `makes ${preprocess.width}x${preprocess.height} inputs, but config.json's vision_config.image_size is ${vision.imageSize}`);
  }

  const chatTemplate = await readChatTemplate(dir, tokenizerConfig);
  const promptFormat = opts.overrides?.promptFormat ?? (chatTemplate !== undefined ? 'template' : vocab.id('<|im_start|>') !== undefined ? 'chatml' : 'vicuna_v1');
  const generation = resolveGeneration(config, textConfig, generationConfig, tokenizerConfig, vocab);
  const onnx = await listOnnx(dir);

  return {
    dir, modelType: modelType!, config, preprocessorConfig: preprocessorConfig!, processorConfig, generationConfig, text, vision,
    imageTokenId, imageToken, numAdditionalImageTokens: num(processorConfig?.num_additional_image_tokens),
    preprocess, tokenizerJson: tokenizerJson!, tokenizerConfig, chatTemplate, promptFormat, generation, onnx,
    contextLength: positiveInt(textConfig.max_position_embeddings) ?? positiveInt(config.max_position_embeddings),
  };
}

export type ChosenVariants = VariantMap;

const SESSION_OF = { vision: 'vision_encoder', embed: 'embed_tokens', decoder: 'decoder_model_merged' } as const;

/**
 * Picks one variant per part from the files the folder holds (the same rule the hub applies to a
 * repository's listing before downloading, src/core/variants.ts). `choice` may pin every part (one
 * variant) or some parts (`{decoder: 'q4'}`); a pinned variant must exist (else the error lists what
 * does); the other parts take the variant config.json's `transformers.js_config` declares when the folder
 * holds it, else the first usable variant in the provider's order. Git LFS pointers
 * are never chosen.
 */
export function chooseVariants(spec: Pick<ModelSpec, 'onnx'> & { config?: unknown }, provider: ExecutionProvider, choice?: VariantChoice): ChosenVariants {
  const usable = (s: OnnxSessionName) => spec.onnx[s].filter((f) => !f.lfsPointer).map((f) => f.variant);
  const picked = choosePartVariants(
    { vision: usable('vision_encoder'), embed: usable('embed_tokens'), decoder: usable('decoder_model_merged') },
    provider,
    choice,
    declaredVariants(spec.config, provider),
  );
  if ('variants' in picked) return picked.variants;
  const session = SESSION_OF[picked.part];
  const listing = spec.onnx[session].map((f) => f.variant + (f.lfsPointer ? ' (Git LFS pointer)' : '')).join(', ') || 'none';
  if (picked.variant) {
    const expected = `onnx/${session}${VARIANT_SUFFIX[picked.variant]}.onnx`;
    if (spec.onnx[session].some((f) => f.variant === picked.variant && f.lfsPointer)) {
      throw new ModelFolderError(expected, 'is a Git LFS pointer, not the weights: fetch the real file');
    }
    throw new ModelFolderError(expected, `variant ${picked.variant} is not in this folder; ${session} has: ${listing}`);
  }
  throw new ModelFolderError(`onnx/${session}.onnx`, `no usable variant of ${session}; found: ${listing}`);
}

/** The listed file of one session's variant (throws ModelFolderError naming the expected file if absent). */
export function onnxFile(spec: Pick<ModelSpec, 'onnx'>, session: OnnxSessionName, variant: DtypeVariant): OnnxFile {
  const file = spec.onnx[session].find((f) => f.variant === variant);
  if (!file) throw new ModelFolderError(`onnx/${session}${VARIANT_SUFFIX[variant]}.onnx`, 'missing');
  return file;
}

// ---------------------------------------------------------------------------------------------------------

async function readJson(dir: string, file: string, optional = false): Promise<Json | undefined> {
  let textContent: string;
  try {
    textContent = await readFile(path.join(dir, file), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      if (optional) return undefined;
      throw new ModelFolderError(file, `missing from ${dir}`, { cause: err });
    }
    throw new ModelFolderError(file, `cannot be read: ${(err as Error).message}`, { cause: err });
  }
  let value: unknown;
  try {
    value = JSON.parse(textContent);
  } catch (err) {
    throw new ModelFolderError(file, `invalid JSON: ${withLineColumn((err as Error).message, textContent)}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ModelFolderError(file, 'is not a JSON object');
  return value as Json;
}

/** V8 reports "at position N"; add the line and column, which an editor can jump to. */
function withLineColumn(message: string, textContent: string): string {
  const m = /position (\d+)/.exec(message);
  if (!m || /line \d+/.test(message)) return message;
  const before = textContent.slice(0, Number(m[1])).split('\n');
  return `${message} (line ${before.length} column ${before[before.length - 1].length + 1})`;
}

function readPreprocess(preprocessorConfig: Json, mode: PreprocessMode | undefined): PreprocessConfig {
  try {
    return preprocessConfigFromHub(preprocessorConfig, mode ? { mode } : {});
  } catch (err) {
    throw new ModelFolderError('preprocessor_config.json', (err as Error).message, { cause: err });
  }
}

function resolveText(textConfig: Json, familyTextType: string): TextSpec {
  const modelType = str(textConfig.model_type) ?? familyTextType;
  const d = TEXT_DEFAULTS[modelType];
  const hiddenSize = num(textConfig.hidden_size) ?? d?.hiddenSize;
  const numHeads = num(textConfig.num_attention_heads) ?? d?.numHeads;
  // Both configs default num_key_value_heads to the head count (no GQA) when it is absent.
  const numKvHeads = num(textConfig.num_key_value_heads) ?? d?.numKvHeads ?? numHeads;
  const headDim = num(textConfig.head_dim) ?? (hiddenSize !== undefined && numHeads ? hiddenSize / numHeads : undefined);
  return {
    modelType, hiddenSize, numHeads, numKvHeads, headDim,
    intermediateSize: num(textConfig.intermediate_size) ?? d?.intermediateSize,
    numLayers: num(textConfig.num_hidden_layers) ?? d?.numLayers,
    vocabSize: num(textConfig.vocab_size) ?? d?.vocabSize,
  };
}

function resolveGeneration(config: Json, textConfig: Json, generationConfig: Json | undefined, tokenizerConfig: Json, vocab: TokenTable): GenerationSpec {
  const tokenId = (key: string) => {
    const t = tokenText(tokenizerConfig[key]);
    return t === undefined ? undefined : vocab.id(t);
  };
  const ids = (v: unknown): number[] | undefined =>
    typeof v === 'number' ? [v] : Array.isArray(v) && v.every((x) => typeof x === 'number') ? (v as number[]) : undefined;
  const eosSource = ids(generationConfig?.eos_token_id) !== undefined ? 'generation_config.json' : 'config.json';
  const eosTokenIds = ids(generationConfig?.eos_token_id) ?? ids(config.eos_token_id) ?? ids(textConfig.eos_token_id) ?? ids(tokenId('eos_token'));
  if (!eosTokenIds || eosTokenIds.length === 0) {
    throw new ModelFolderError('generation_config.json', 'no eos_token_id here, in config.json or in the tokenizer config: generation could never stop');
  }
  for (const id of eosTokenIds) {
    if (vocab.token(id) === undefined) throw new ModelFolderError(eosSource, `eos_token_id ${id} is not a token of tokenizer.json`);
  }
  return {
    eosTokenIds,
    bosTokenId: num(generationConfig?.bos_token_id) ?? num(config.bos_token_id) ?? num(textConfig.bos_token_id) ?? tokenId('bos_token'),
    padTokenId: num(generationConfig?.pad_token_id) ?? num(config.pad_token_id) ?? num(textConfig.pad_token_id) ?? tokenId('pad_token'),
  };
}

/** chat_template.jinja, then chat_template.json, then tokenizer_config.json (the processor files win, as in transformers). */
async function readChatTemplate(dir: string, tokenizerConfig: Json): Promise<string | undefined> {
  try {
    return await readFile(path.join(dir, 'chat_template.jinja'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ModelFolderError('chat_template.jinja', (err as Error).message, { cause: err });
  }
  const fromJson = await readJson(dir, 'chat_template.json', true);
  if (fromJson) return pickTemplate(fromJson.chat_template, 'chat_template.json');
  return pickTemplate(tokenizerConfig.chat_template, 'tokenizer_config.json');
}

/** A template is a string, a list of {name, template} or a {name: template} map; the 'default' one is used. */
function pickTemplate(value: unknown, file: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === 'string') return value;
  const named = new Map<string, unknown>();
  if (Array.isArray(value)) for (const e of value) named.set(String((e as Json)?.name), (e as Json)?.template);
  else if (typeof value === 'object') for (const [k, v] of Object.entries(value)) named.set(k, v);
  const t = named.get('default');
  if (typeof t !== 'string') throw new ModelFolderError(file, `chat_template has no 'default' template (has: ${[...named.keys()].join(', ')})`);
  return t;
}

async function listOnnx(dir: string): Promise<Record<OnnxSessionName, OnnxFile[]>> {
  const onnxDir = path.join(dir, 'onnx');
  let names: string[];
  try {
    names = await readdir(onnxDir);
  } catch (err) {
    throw new ModelFolderError('onnx/', `no onnx/ folder in ${dir}: this reader expects the transformers.js layout (onnx/vision_encoder*.onnx, ...)`, { cause: err });
  }
  const out = {} as Record<OnnxSessionName, OnnxFile[]>;
  for (const session of ONNX_SESSIONS) {
    out[session] = [];
    for (const [variant, suffix] of Object.entries(VARIANT_SUFFIX) as [DtypeVariant, string][]) {
      const file = `${session}${suffix}.onnx`;
      if (!names.includes(file)) continue;
      const full = path.join(onnxDir, file);
      const bytes = (await stat(full)).size;
      const externalData = names.filter((n) => n.startsWith(`${file}_data`) || n.startsWith(`${file}.data`)).sort()
        .map((n) => path.join(onnxDir, n));
      out[session].push({ variant, path: full, bytes, externalData, lfsPointer: await isLfsPointer(full, bytes) });
    }
    if (out[session].length === 0) {
      const present = names.filter((n) => n.endsWith('.onnx')).join(', ') || 'no .onnx files';
      throw new ModelFolderError(`onnx/${session}.onnx`, `missing (no variant of the ${session} session; onnx/ has: ${present})`);
    }
  }
  return out;
}

async function isLfsPointer(file: string, bytes: number): Promise<boolean> {
  if (bytes === 0 || bytes > 1024) return false;
  const fh = await open(file, 'r');
  try {
    const buf = Buffer.alloc(bytes);
    await fh.read(buf, 0, bytes, 0);
    return buf.toString('utf8').startsWith('version https://git-lfs');
  } finally {
    await fh.close();
  }
}

/** Token <-> id lookups straight from tokenizer.json, without building a tokenizer. */
class TokenTable {
  private readonly byId = new Map<number, string>();
  private readonly byToken = new Map<string, number>();
  readonly size: number;
  constructor(tokenizerJson: Json) {
    const model = (tokenizerJson.model as Json | undefined) ?? {};
    const vocab = model.vocab;
    // BPE / WordPiece: {token: id}; Unigram: [[token, score], ...] indexed by id.
    if (Array.isArray(vocab)) vocab.forEach((e, i) => this.add(String((e as unknown[])[0]), i));
    else if (vocab && typeof vocab === 'object') for (const [t, i] of Object.entries(vocab)) this.add(t, Number(i));
    for (const a of (tokenizerJson.added_tokens as Json[] | undefined) ?? []) this.add(String(a.content), Number(a.id));
    if (this.byId.size === 0) throw new ModelFolderError('tokenizer.json', 'has no vocabulary (model.vocab and added_tokens are empty)');
    let maxId = -1;
    for (const id of this.byId.keys()) if (id > maxId) maxId = id; // no spread: 150k arguments overflow the stack
    this.size = maxId + 1;
  }
  private add(token: string, id: number) {
    this.byId.set(id, token);
    this.byToken.set(token, id);
  }
  id(token: string): number | undefined { return this.byToken.get(token); }
  token(id: number): string | undefined { return this.byId.get(id); }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}
function positiveInt(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}
function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}
/** Special tokens appear as strings or as AddedToken objects ({content, ...}). */
function tokenText(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as Json).content === 'string') return (v as Json).content as string;
  return undefined;
}
