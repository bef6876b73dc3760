// A llava-hf config.json -> the architecture the graph builders need (`LlavaSpec`). transformers
// writes only the values that differ from the model type's defaults (llava-1.5-7b-hf's text_config has
// no hidden size, layer or head counts), so missing values take the defaults of LlamaConfig and
// CLIPVisionConfig; every tensor's shape is later checked against the spec, so a wrong default is an
// error naming the tensor, never a silently wrong model.

import { ConvertError } from '../core';
import type { LlavaSpec } from './spec';

/** LlamaConfig's defaults (transformers' configuration_llama.py), the values llava-1.5's text_config omits. */
const LLAMA_DEFAULTS = {
  vocab_size: 32000,
  hidden_size: 4096,
  intermediate_size: 11008,
  num_hidden_layers: 32,
  num_attention_heads: 32,
  max_position_embeddings: 2048,
  rms_norm_eps: 1e-6,
  rope_theta: 10000,
};

/** CLIPVisionConfig's defaults. */
const CLIP_VISION_DEFAULTS = {
  hidden_size: 768,
  intermediate_size: 3072,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  image_size: 224,
  patch_size: 32,
  hidden_act: 'quick_gelu',
  layer_norm_eps: 1e-5,
};

const FILE = 'config.json';

type Json = Record<string, unknown>;

function num(obj: Json, key: string, fallback: number, where: string): number {
  const v = obj[key] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ConvertError(FILE, `${where}.${key} is ${JSON.stringify(v)}, not a number`);
  return v;
}

function int(obj: Json, key: string, fallback: number, where: string): number {
  const v = num(obj, key, fallback, where);
  if (!Number.isInteger(v) || v <= 0) throw new ConvertError(FILE, `${where}.${key} is ${v}, not a positive integer`);
  return v;
}

/** The spec of a llava-hf LLaVA (model_type llava, CLIP vision tower, LLaMA text model). */
export function specFromLlavaConfig(config: Json, name = 'llava'): LlavaSpec {
  if (config.model_type !== 'llava') throw new ConvertError(FILE, `model_type is ${JSON.stringify(config.model_type)}; this converter reads llava (LLaVA-1.5 as llava-hf publishes it)`);
  const text = (config.text_config ?? {}) as Json;
  const vision = (config.vision_config ?? {}) as Json;
  const textType = text.model_type ?? 'llama';
  const visionType = vision.model_type ?? 'clip_vision_model';
  if (textType !== 'llama') throw new ConvertError(FILE, `text_config.model_type ${JSON.stringify(textType)} is not supported (llama is)`);
  if (visionType !== 'clip_vision_model') throw new ConvertError(FILE, `vision_config.model_type ${JSON.stringify(visionType)} is not supported (clip_vision_model is)`);

  const strategy = config.vision_feature_select_strategy ?? 'default';
  if (strategy !== 'default' && strategy !== 'full') throw new ConvertError(FILE, `vision_feature_select_strategy ${JSON.stringify(strategy)} is not default or full`);
  const featureLayer = config.vision_feature_layer ?? -2;
  if (typeof featureLayer !== 'number' || !Number.isInteger(featureLayer)) {
    throw new ConvertError(FILE, `vision_feature_layer ${JSON.stringify(featureLayer)} is not one layer index (a list of layers is not supported)`);
  }
  const projectorAct = config.projector_hidden_act ?? 'gelu';
  if (projectorAct !== 'gelu') throw new ConvertError(FILE, `projector_hidden_act ${JSON.stringify(projectorAct)} is not supported (gelu is)`);
  const visionAct = vision.hidden_act ?? CLIP_VISION_DEFAULTS.hidden_act;
  if (visionAct !== 'quick_gelu') throw new ConvertError(FILE, `vision_config.hidden_act ${JSON.stringify(visionAct)} is not supported (quick_gelu is)`);
  const imageTokenId = config.image_token_index ?? config.image_token_id;
  if (typeof imageTokenId !== 'number') throw new ConvertError(FILE, 'has no image_token_index');
  if (text.rope_scaling) throw new ConvertError(FILE, 'text_config.rope_scaling is not supported');

  const heads = int(text, 'num_attention_heads', LLAMA_DEFAULTS.num_attention_heads, 'text_config');
  const hidden = int(text, 'hidden_size', LLAMA_DEFAULTS.hidden_size, 'text_config');
  // transformers' LlamaConfig: head_dim, when given, need not be hidden_size / num_attention_heads
  const headDim = text.head_dim === undefined || text.head_dim === null ? undefined : int(text, 'head_dim', 0, 'text_config');
  if (headDim === undefined && hidden % heads !== 0) throw new ConvertError(FILE, `text_config.hidden_size ${hidden} is not a multiple of num_attention_heads ${heads}`);
  if (headDim !== undefined && (headDim <= 0 || headDim % 2 !== 0)) throw new ConvertError(FILE, `text_config.head_dim ${headDim} is not a positive even number (rotary embedding halves it)`);
  const visionHidden = int(vision, 'hidden_size', CLIP_VISION_DEFAULTS.hidden_size, 'vision_config');
  const visionHeads = int(vision, 'num_attention_heads', CLIP_VISION_DEFAULTS.num_attention_heads, 'vision_config');
  if (visionHidden % visionHeads !== 0) throw new ConvertError(FILE, `vision_config.hidden_size ${visionHidden} is not a multiple of num_attention_heads ${visionHeads}`);

  return {
    name,
    vision: {
      kind: 'clip',
      modelType: 'clip_vision_model',
      imageSize: int(vision, 'image_size', CLIP_VISION_DEFAULTS.image_size, 'vision_config'),
      patchSize: int(vision, 'patch_size', CLIP_VISION_DEFAULTS.patch_size, 'vision_config'),
      hidden: visionHidden,
      intermediate: int(vision, 'intermediate_size', CLIP_VISION_DEFAULTS.intermediate_size, 'vision_config'),
      heads: visionHeads,
      layers: int(vision, 'num_hidden_layers', CLIP_VISION_DEFAULTS.num_hidden_layers, 'vision_config'),
      act: 'quick_gelu',
      eps: num(vision, 'layer_norm_eps', CLIP_VISION_DEFAULTS.layer_norm_eps, 'vision_config'),
    },
    text: {
      modelType: 'llama',
      hidden,
      intermediate: int(text, 'intermediate_size', LLAMA_DEFAULTS.intermediate_size, 'text_config'),
      heads,
      kvHeads: int(text, 'num_key_value_heads', heads, 'text_config'),
      ...(headDim !== undefined && headDim !== hidden / heads ? { headDim } : {}),
      layers: int(text, 'num_hidden_layers', LLAMA_DEFAULTS.num_hidden_layers, 'text_config'),
      // llava-hf writes the padded vocabulary at the top level too (32064 for llava-1.5)
      vocab: int(text, 'vocab_size', typeof config.vocab_size === 'number' ? config.vocab_size : LLAMA_DEFAULTS.vocab_size, 'text_config'),
      ropeTheta: num(text, 'rope_theta', LLAMA_DEFAULTS.rope_theta, 'text_config'),
      eps: num(text, 'rms_norm_eps', LLAMA_DEFAULTS.rms_norm_eps, 'text_config'),
      qkvBias: text.attention_bias === true,
      maxPositions: int(text, 'max_position_embeddings', LLAMA_DEFAULTS.max_position_embeddings, 'text_config'),
    },
    featureLayer,
    featureStrategy: strategy,
    projectorAct: 'gelu',
    imageTokenId,
  };
}
