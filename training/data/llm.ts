// The paper's three instruction types written by a language model, the way LLaVA §3 did with GPT-4:
// a system prompt saying what to write and that the model must answer as if it saw the image,
// hand-written few-shot examples (a context and the wanted response), then this image's captions
// and boxes as text. Any OpenAI-compatible /chat/completions endpoint; the responses are parsed into
// LLaVA-Instruct samples and checked like the templates' (a response that does not parse is an
// error naming the image, not a silently dropped sample).

import { contextText, type Context } from './context';
import { sample, type InstructSample } from './llavaFormat';
import { DETAIL_PROMPTS } from './paperTypes';
import { Rng } from './rng';

export type PaperType = 'conversation' | 'detail' | 'complex';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

const SHARED = `You are an AI visual assistant looking at a single image of simple coloured shapes. You do not see the image: you receive its captions and the bounding box of every object as [x1, y1, x2, y2] in pixels, with (0, 0) at the top left. Answer as if you were looking at the image yourself: never mention captions, boxes or coordinates. Only state what the description supports with certainty; positions follow from the boxes.`;

export const SYSTEM_PROMPTS: Record<PaperType, string> = {
  conversation: `${SHARED} Write a conversation between a person asking about the image and you answering. Ask about colours, shapes, how many there are, where they are (in the image and relative to each other), and whether something is present (include questions whose answer is no). Write 3 to 6 exchanges in this form:\nQuestion:\n...\n===\nAnswer:\n...\n===`,
  detail: `${SHARED} Describe the image in rich detail: every shape with its size, colour and position, the background, and how the shapes are arranged. Write one paragraph.`,
  complex: `${SHARED} Ask one question that needs a step of reasoning over several shapes (counting after a change, comparing sizes or amounts, ordering), then answer it step by step. Use this form:\nQuestion:\n...\n===\nAnswer:\n...`,
};

/** One hand-written example per type (a context and the wanted response), as the paper's few-shot prompts. */
const EXAMPLE_CONTEXT = `Image size: 400 x 300 pixels.
Captions:
A red circle and a large blue square on a plain cream background.
Two coloured shapes on a plain cream background.

Objects (class: [x1, y1, x2, y2] in pixels):
small red circle: [40, 50, 80, 90]
large blue square: [220, 120, 330, 230]`;

export const FEW_SHOT: Record<PaperType, string> = {
  conversation: `Question:\nWhat colour is the circle?\n===\nAnswer:\nThe circle is red.\n===\nQuestion:\nIs there a green triangle in the picture?\n===\nAnswer:\nNo, there is no green triangle. The only shapes are a red circle and a blue square.\n===\nQuestion:\nWhere is the blue square?\n===\nAnswer:\nThe blue square is in the bottom right part of the image, to the right of and below the red circle.\n===`,
  detail: `The image shows two shapes on a plain cream background. A small red circle sits in the top left of the picture, and a large blue square is in the lower right. The square is much bigger than the circle, and the circle is above and to the left of it.`,
  complex: `Question:\nIf the blue shape were removed, how many shapes would remain, and what would they be?\n===\nAnswer:\nThere are two shapes: a red circle and a blue square. Only the square is blue, so removing it leaves one shape, the small red circle in the top left.`,
};

export function chatMessages(type: PaperType, ctx: Context): ChatMessage[] {
  return [
    { role: 'system', content: SYSTEM_PROMPTS[type] },
    { role: 'user', content: EXAMPLE_CONTEXT },
    { role: 'assistant', content: FEW_SHOT[type] },
    { role: 'user', content: contextText(ctx) },
  ];
}

/** "Question:\n...\n===\nAnswer:\n...\n===" blocks -> pairs. */
export function parseQaBlocks(text: string): [string, string][] {
  const parts = text.split(/^\s*===\s*$/m).map((p) => p.trim()).filter(Boolean);
  const pairs: [string, string][] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const q = /^Question:\s*([\s\S]+)$/i.exec(parts[i]);
    const a = /^Answer:\s*([\s\S]+)$/i.exec(parts[i + 1]);
    if (!q || !a) break;
    pairs.push([q[1].trim(), a[1].trim()]);
  }
  return pairs;
}

export interface LlmOptions {
  /** base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1 */
  url: string;
  model: string;
  apiKey?: string;
  temperature?: number;
  timeoutMs?: number;
}

export async function chatCompletion(opts: LlmOptions, messages: ChatMessage[]): Promise<string> {
  const url = `${opts.url.replace(/\/+$/, '')}/chat/completions`;
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(opts.apiKey ? { authorization: `Bearer ${opts.apiKey}` } : {}) },
    body: JSON.stringify({ model: opts.model, messages, temperature: opts.temperature ?? 0.2 }),
    signal: AbortSignal.timeout(opts.timeoutMs ?? 120_000),
  });
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${(await res.text()).slice(0, 200)}`);
  const json = (await res.json()) as { choices?: { message?: { content?: unknown } }[] };
  const content = json.choices?.[0]?.message?.content;
  if (typeof content !== 'string' || !content.trim()) throw new Error(`${url}: the response has no message content`);
  return content;
}

/** The three paper types for one image through the language model. */
export async function llmSamples(ctx: Context, opts: LlmOptions): Promise<InstructSample[]> {
  const rng = new Rng(`${ctx.id}:llm`);
  const conv = parseQaBlocks(await chatCompletion(opts, chatMessages('conversation', ctx)));
  if (!conv.length) throw new Error(`${ctx.image}: the conversation response has no Question/Answer blocks`);
  const detail = (await chatCompletion(opts, chatMessages('detail', ctx))).trim();
  const complex = parseQaBlocks(await chatCompletion(opts, chatMessages('complex', ctx)));
  if (!complex.length) throw new Error(`${ctx.image}: the complex-reasoning response has no Question/Answer block`);
  return [
    sample(`${ctx.id}-conv`, ctx.image, conv),
    sample(`${ctx.id}-detail`, ctx.image, [[rng.pick(DETAIL_PROMPTS), detail]]),
    sample(`${ctx.id}-complex`, ctx.image, complex.slice(0, 1)),
  ];
}
