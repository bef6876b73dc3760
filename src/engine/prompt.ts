// Conversation -> prompt text -> prompt ids with every image placeholder expanded to its feature rows.
// The folder's chat template is preferred (rendered with @huggingface/jinja exactly as transformers.js does);
// folders without one use a named format, held below as data, not code branches.

import { Template } from '@huggingface/jinja';
import { EngineError } from '../core';
import type { ModelSpec } from './modelFolder';
import type { Tokenizer } from './tokenizer';
import type { ChatTurn, PromptFormatName } from '../core';

/**
 * A prompt format as data. Placeholders: {system}, {text}, {images} (one `image` per image of the turn),
 * {image} (the model's image token string), {eos} (the tokenizer's eos_token string).
 */
export interface PromptFormat {
  /** system prompt used when the caller gives none; undefined: no system block */
  defaultSystem?: string;
  system: string;
  user: string;
  assistant: string;
  /** what opens the assistant's answer (add_generation_prompt) */
  generationPrompt: string;
  image: string;
}

export const PROMPT_FORMATS: Readonly<Record<PromptFormatName, PromptFormat>> = {
  // Original LLaVA-1.5 conv_vicuna_v1: sep " ", sep2 "</s>" (SeparatorStyle.TWO).
  vicuna_v1: {
    defaultSystem:
      "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.",
    system: '{system} ',
    user: 'USER: {images}{text} ',
    assistant: 'ASSISTANT: {text}{eos}',
    generationPrompt: 'ASSISTANT:',
    image: '{image}\n',
  },
  chatml: {
    system: '<|im_start|>system\n{system}<|im_end|>\n',
    user: '<|im_start|>user\n{images}{text}<|im_end|>\n',
    assistant: '<|im_start|>assistant\n{text}<|im_end|>\n',
    generationPrompt: '<|im_start|>assistant\n',
    image: '{image}\n',
  },
};

export interface RenderOptions {
  /** end with the format's assistant opener (default true) */
  addGenerationPrompt?: boolean;
  /** forced start of the answer, placed where the answer text would begin */
  answerPrefix?: string;
  /** system prompt (named formats: replaces the format's default; templates: a leading system message) */
  system?: string;
}

/** Token attributes transformers.js passes to chat templates (SPECIAL_TOKEN_ATTRIBUTES). */
const TEMPLATE_TOKEN_KEYS = ['bos_token', 'eos_token', 'unk_token', 'sep_token', 'pad_token', 'cls_token', 'mask_token'];

type Message = { role: string; content: string | ({ type: 'image' } | { type: 'text'; text: string })[] };

export function renderPrompt(
  spec: Pick<ModelSpec, 'promptFormat' | 'chatTemplate' | 'tokenizerConfig' | 'imageToken'> & Partial<Pick<ModelSpec, 'tokenizerJson'>>,
  turns: ChatTurn[],
  opts: RenderOptions = {},
): string {
  const addGenerationPrompt = opts.addGenerationPrompt ?? true;
  // Turn texts (what the user typed, a caption prompt's {name}, earlier answers) are text, never control:
  // "<|im_end|>" or "</s>" typed there must not end a turn or the conversation.
  const special = specialTokenStrings(spec);
  const safeTurns = turns.map((t) => ({ ...t, text: neutralizeSpecialTokens(t.text, special) }));
  const render = (ts: ChatTurn[], withGenerationPrompt: boolean) =>
    spec.promptFormat === 'template'
      ? renderTemplate(spec, ts, withGenerationPrompt, opts.system)
      : renderFormat(PROMPT_FORMATS[spec.promptFormat], spec, ts, withGenerationPrompt, opts.system);
  const text = render(safeTurns, addGenerationPrompt);
  if (!opts.answerPrefix || !addGenerationPrompt) return text;
  return text + answerSeparator(safeTurns, render, text) + neutralizeSpecialTokens(opts.answerPrefix, special);
}

/**
 * What the format puts between the generation prompt and the answer (" " after "ASSISTANT:", "" after
 * "<|im_start|>assistant\n"): found by rendering the conversation once more with a marker answer, so a forced
 * answer prefix tokenizes exactly as if the model had written it.
 */
function answerSeparator(turns: ChatTurn[], render: (ts: ChatTurn[], g: boolean) => string, withPrompt: string): string {
  const marker = '\u0000ANSWER\u0000';
  const answered = render([...turns, { role: 'assistant', text: marker }], false);
  const at = answered.indexOf(marker);
  return at >= withPrompt.length && answered.startsWith(withPrompt) ? answered.slice(withPrompt.length, at) : '';
}

function renderFormat(
  format: PromptFormat, spec: Pick<ModelSpec, 'tokenizerConfig' | 'imageToken'>, turns: ChatTurn[], addGenerationPrompt: boolean, system?: string,
): string {
  const eos = tokenString(spec.tokenizerConfig.eos_token) ?? '';
  const fill = (tpl: string, values: Record<string, string>) => tpl.replace(/\{(\w+)\}/g, (m, k: string) => values[k] ?? m);
  const image = fill(format.image, { image: spec.imageToken });
  let out = '';
  const sys = system ?? format.defaultSystem;
  if (sys !== undefined) out += fill(format.system, { system: sys });
  for (const turn of turns) {
    const images = image.repeat(turn.images?.length ?? 0);
    // Single-pass fill: user text containing "{eos}" or "{images}" stays literal.
    out += fill(turn.role === 'user' ? format.user : format.assistant, { text: turn.text, images, eos });
  }
  if (addGenerationPrompt) out += format.generationPrompt;
  return out;
}

const templateCache = new Map<string, Template>();

function renderTemplate(
  spec: Pick<ModelSpec, 'chatTemplate' | 'tokenizerConfig' | 'imageToken'>, turns: ChatTurn[], addGenerationPrompt: boolean, system?: string,
): string {
  const source = spec.chatTemplate;
  if (source === undefined) throw new EngineError('GENERATION', 'prompt format is "template" but the model folder has no chat template');
  let template = templateCache.get(source);
  if (!template) {
    // Jinja2 (what transformers renders with) turns every \r\n or \r in a template, string literals included,
    // into \n; @huggingface/jinja does not. Templates checked out on Windows (autocrlf) carry CRLF inside
    // '<image>\n' literals. @huggingface/jinja strips {% generation %} tags (llava-1.5-hf's template has them).
    template = new Template(source.replace(/\r\n?/g, '\n'));
    templateCache.set(source, template);
  }
  // llava-hf templates take content lists ({type: 'image'} / {type: 'text'}); older chat templates
  // (Qwen/ChatML tokenizers) print message.content as a string, where LLaVA puts "<image>\n" before the text.
  const contentLists = /['"]type['"]|\.type\b/.test(source);
  const messages: Message[] = [];
  if (system !== undefined) messages.push({ role: 'system', content: contentLists ? [{ type: 'text', text: system }] : system });
  for (const t of turns) {
    const n = t.images?.length ?? 0;
    messages.push({
      role: t.role,
      content: contentLists
        ? [...Array.from({ length: n }, () => ({ type: 'image' as const })), { type: 'text' as const, text: t.text }]
        : `${spec.imageToken}\n`.repeat(n) + t.text,
    });
  }
  const tokens: Record<string, string> = {};
  for (const key of TEMPLATE_TOKEN_KEYS) {
    const value = tokenString(spec.tokenizerConfig[key]);
    if (value) tokens[key] = value;
  }
  return template.render({ messages, add_generation_prompt: addGenerationPrompt, ...tokens });
}

export interface PromptIds {
  /** [T] token ids, each image token expanded to its feature rows */
  ids: number[];
  /** where each image's rows sit in `ids`, in image order */
  imageSpans: { start: number; length: number }[];
}

/**
 * Expands the i-th image token of the text to imageTokenCounts[i] copies and tokenizes the whole text with
 * special tokens added, as transformers.js's LlavaProcessor does (it calls the tokenizer with its defaults,
 * add_special_tokens = true: Llama's post-processor prepends BOS). Counts are the vision encoder's real
 * output rows, not processor_config arithmetic. One deliberate difference: when the rendered text already
 * begins with the BOS string (templates that print {{ bos_token }}), the second BOS is dropped.
 */
export function buildPromptIds(
  tokenizer: Tokenizer, spec: Pick<ModelSpec, 'imageToken' | 'imageTokenId'>, promptText: string, imageTokenCounts: number[],
): PromptIds {
  const pieces = promptText.split(spec.imageToken);
  const found = pieces.length - 1;
  if (found !== imageTokenCounts.length) {
    throw new EngineError('GENERATION', `the prompt has ${found} ${spec.imageToken} placeholder(s) for ${imageTokenCounts.length} image(s)`);
  }
  let expanded = pieces[0];
  imageTokenCounts.forEach((n, i) => {
    expanded += spec.imageToken.repeat(n) + pieces[i + 1];
  });
  let ids = tokenizer.encode(expanded, { addSpecialTokens: true });
  const bos = tokenizer.bosTokenId;
  if (bos !== undefined && ids[0] === bos && ids[1] === bos) {
    const bosText = tokenizer.idToToken(bos);
    if (bosText && expanded.startsWith(bosText)) ids = ids.slice(1);
  }

  // Locate each image's run in order; adjacent images form one long run, so walk it by the counts.
  const imageSpans: PromptIds['imageSpans'] = [];
  let cursor = 0;
  for (const n of imageTokenCounts) {
    const start = ids.indexOf(spec.imageTokenId, cursor);
    const end = start + n;
    if (start < 0 || end > ids.length || ids.slice(start, end).some((id) => id !== spec.imageTokenId)) {
      throw new EngineError('GENERATION', `tokenizing the prompt did not keep ${n} consecutive image tokens (id ${spec.imageTokenId}) for image ${imageSpans.length + 1}`);
    }
    imageSpans.push({ start, length: n });
    cursor = end;
  }
  if (ids.indexOf(spec.imageTokenId, cursor) >= 0) {
    throw new EngineError('GENERATION', `the prompt has more image tokens (id ${spec.imageTokenId}) than the ${imageTokenCounts.length} image(s) need`);
  }
  return { ids, imageSpans };
}

const specialCache = new WeakMap<object, string[]>();

/**
 * The strings the tokenizer turns into control tokens wherever they appear: the image token, every added
 * token marked special in tokenizer.json, and the tokenizer config's named tokens; longest first.
 */
export function specialTokenStrings(spec: Pick<ModelSpec, 'tokenizerConfig' | 'imageToken'> & Partial<Pick<ModelSpec, 'tokenizerJson'>>): string[] {
  const cached = specialCache.get(spec);
  if (cached) return cached;
  const found = new Set<string>([spec.imageToken]);
  const added = (spec.tokenizerJson as { added_tokens?: unknown } | undefined)?.added_tokens;
  if (Array.isArray(added)) {
    for (const t of added) if (t && typeof t === 'object' && (t as { special?: unknown }).special === true) found.add(tokenString(t) ?? '');
  }
  for (const key of TEMPLATE_TOKEN_KEYS) found.add(tokenString(spec.tokenizerConfig[key]) ?? '');
  const extra = spec.tokenizerConfig.additional_special_tokens;
  if (Array.isArray(extra)) for (const t of extra) found.add(tokenString(t) ?? '');
  const list = [...found].filter((t) => t.length > 1).sort((a, b) => b.length - a.length);
  specialCache.set(spec, list);
  return list;
}

/**
 * Special tokens are split out of any text by the tokenizer, so "<image>" typed by a user would add a
 * placeholder without an image and "<|im_end|>" would end the turn. A zero-width space after the first
 * character keeps the text readable and makes it ordinary text.
 */
export function neutralizeSpecialTokens(text: string, tokens: readonly string[]): string {
  for (const token of tokens) {
    if (!text.includes(token)) continue;
    const [first] = token;
    text = text.split(token).join(first + '\u200B' + token.slice(first.length));
  }
  return text;
}

function tokenString(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}
