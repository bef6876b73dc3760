// A chat-completions request body (already JSON.parse'd, so untrusted) -> engine turns and options.
// Every field the server does not honour is refused by name rather than silently ignored, so a client
// never gets an answer to a question it did not ask. `system` text is put before the first user turn
// (the engine's prompt formats carry user and assistant turns only).

import type { ChatTurn, ImageInput } from '../core';
import { badRequest } from './errors';
import { resolveImage, type ImagePolicy } from './images';

export interface ChatRequest {
  model: string;
  turns: ChatTurn[];
  stream: boolean;
  /** stream_options.include_usage: a last chunk with token counts */
  includeUsage: boolean;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  repetitionPenalty?: number;
}

export interface RequestLimits extends ImagePolicy {
  maxImagesPerRequest: number;
  maxMessages: number;
  maxTokens: number;
}

const obj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function optNumber(body: Record<string, unknown>, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw badRequest(`${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}`, key);
  }
  return v;
}

/** Parses and validates; images are resolved (decoded from base64, read, fetched) here. */
export async function parseChatRequest(body: unknown, limits: RequestLimits, signal?: AbortSignal): Promise<ChatRequest> {
  if (!obj(body)) throw badRequest('the request body must be a JSON object');
  if (typeof body.model !== 'string' || !body.model) throw badRequest('model is required (see GET /v1/models)', 'model');
  if (body.stream !== undefined && body.stream !== null && typeof body.stream !== 'boolean') throw badRequest('stream must be a boolean', 'stream');
  const n = optNumber(body, 'n', 1, 1, true);
  void n; // only n = 1 exists here; anything else was refused above
  for (const key of ['tools', 'functions', 'tool_choice', 'response_format', 'logprobs', 'stop'] as const) {
    const v = body[key];
    if (v !== undefined && v !== null && v !== false) throw badRequest(`${key} is not supported by this server`, key, 'unsupported_parameter');
  }
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && !obj(streamOptions)) throw badRequest('stream_options must be an object', 'stream_options');

  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw badRequest('messages must be a non-empty array', 'messages');
  if (messages.length > limits.maxMessages) throw badRequest(`at most ${limits.maxMessages} messages`, 'messages');

  const system: string[] = [];
  const turns: ChatTurn[] = [];
  let images = 0;
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const p = `messages.${i}`;
    if (!obj(m)) throw badRequest('each message must be an object', p);
    const role = m.role;
    if (role !== 'system' && role !== 'developer' && role !== 'user' && role !== 'assistant') {
      throw badRequest(`role must be system, user or assistant (not ${JSON.stringify(role)})`, `${p}.role`);
    }
    const texts: string[] = [];
    const turnImages: ImageInput[] = [];
    if (typeof m.content === 'string') texts.push(m.content);
    else if (Array.isArray(m.content)) {
      for (let j = 0; j < m.content.length; j++) {
        const part = m.content[j];
        const pp = `${p}.content.${j}`;
        if (!obj(part)) throw badRequest('each content part must be an object', pp);
        if (part.type === 'text' && typeof part.text === 'string') texts.push(part.text);
        else if (part.type === 'image_url' && role === 'user') {
          if (++images > limits.maxImagesPerRequest) throw badRequest(`at most ${limits.maxImagesPerRequest} images per request`, pp);
          const url = obj(part.image_url) ? part.image_url.url : part.image_url;
          turnImages.push(await resolveImage(url, `${pp}.image_url.url`, limits, signal));
        } else throw badRequest(`unsupported content part ${JSON.stringify(part.type)}${part.type === 'image_url' ? ` in a ${role} message` : ''}`, `${pp}.type`);
      }
    } else throw badRequest('content must be a string or an array of parts', `${p}.content`);

    const text = texts.join('\n');
    if (role === 'system' || role === 'developer') system.push(text);
    else if (role === 'assistant') turns.push({ role, text });
    else turns.push(turnImages.length ? { role, text, images: turnImages } : { role, text });
  }
  const last = turns[turns.length - 1];
  if (!last || last.role !== 'user') throw badRequest('the last message must be from the user', 'messages');
  const firstUser = turns.find((t) => t.role === 'user')!;
  if (system.length) firstUser.text = `${system.join('\n')}\n\n${firstUser.text}`;

  const maxTokens = optNumber(body, 'max_completion_tokens', 1, limits.maxTokens, true) ?? optNumber(body, 'max_tokens', 1, limits.maxTokens, true);
  return {
    model: body.model,
    turns,
    stream: body.stream === true,
    includeUsage: obj(streamOptions) && streamOptions.include_usage === true,
    maxTokens,
    temperature: optNumber(body, 'temperature', 0, 2),
    topP: optNumber(body, 'top_p', 0, 1),
    seed: optNumber(body, 'seed', 0, 2 ** 32 - 1, true),
    repetitionPenalty: optNumber(body, 'repetition_penalty', 0.01, 10),
  };
}
