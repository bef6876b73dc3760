// A small OpenAI-compatible chat client over fetch (no SDK in what users install): the same shape of
// call the host makes of its local engine (turns in, streamed deltas out, one final text), against
// vLLM, Ollama, llama.cpp's server, or another machine's `llava serve`. Images travel as data: URLs.
//
// Retries: connection failures, 408, 429 and 5xx are retried with exponential backoff (Retry-After
// honoured, bounded) as long as no text has reached the caller; other 4xx are final. A server's
// `{"error": {...}}` body becomes a typed error (an undecodable image stays an IMAGE_DECODE error).

import { promises as fsp } from 'node:fs';
import { AbortedError, ImageDecodeError, ImageTooLargeError, RemoteError, type ChatTurn, type ImageInput } from '../core';
import { toDataUrl } from './images';

export interface RemoteClientOptions {
  /** e.g. http://127.0.0.1:8000/v1 (a trailing /chat/completions is added) */
  baseUrl: string;
  model: string;
  apiKey?: string;
  /** retries after the first attempt (default 5) */
  retries?: number;
  /** the first backoff; it doubles each retry (default 500 ms, at most 8 s) */
  backoffMs?: number;
  /** per attempt, until the response headers (default 120 s) */
  timeoutMs?: number;
  /** the largest image file sent (default 64 MiB, the engine's own limit) */
  maxImageBytes?: number;
  log?: (line: string) => void;
}

export interface RemoteChatOptions {
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  signal?: AbortSignal;
  /** given: the answer is streamed (SSE) and each piece passed here */
  onDelta?: (text: string) => void;
}

export interface RemoteAnswer {
  text: string;
  finishReason: string;
  promptTokens: number;
  newTokens: number;
  seconds: number;
}

const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export class RemoteClient {
  constructor(readonly opts: RemoteClientOptions) {}

  get endpoint(): string {
    return `${this.opts.baseUrl.replace(/\/+$/, '')}/chat/completions`;
  }

  /** The model ids the server lists (GET /models). */
  async models(signal?: AbortSignal): Promise<string[]> {
    const res = await fetch(`${this.opts.baseUrl.replace(/\/+$/, '')}/models`, { headers: this.headers(), signal: signal ?? AbortSignal.timeout(15_000) }).catch((err: Error) => {
      throw new RemoteError(0, `${this.opts.baseUrl}: ${causeOf(err)}`, { cause: err });
    });
    if (!res.ok) throw await errorFrom(res, this.opts.baseUrl);
    const body = (await res.json()) as { data?: { id?: unknown }[] };
    return (body.data ?? []).map((m) => String(m.id));
  }

  async chat(turns: ChatTurn[], o: RemoteChatOptions = {}): Promise<RemoteAnswer> {
    const started = performance.now();
    const body = JSON.stringify({
      model: this.opts.model,
      messages: await toMessages(turns, this.opts.maxImageBytes ?? 64 * 1024 * 1024),
      max_tokens: o.maxNewTokens,
      temperature: o.temperature ?? 0,
      seed: o.seed,
      stream: !!o.onDelta,
      ...(o.onDelta ? { stream_options: { include_usage: true } } : {}),
    });
    const retries = this.opts.retries ?? 5;
    for (let attempt = 0; ; attempt++) {
      if (o.signal?.aborted) throw new AbortedError();
      let wait: number | undefined;
      let failure: Error;
      let delivered = false;
      try {
        const res = await this.post(body, o.signal);
        if (res.ok) {
          const onDelta = o.onDelta && ((t: string) => ((delivered = true), o.onDelta!(t)));
          const answer = onDelta ? await readStream(res, onDelta) : await readJson(res);
          return { ...answer, seconds: (performance.now() - started) / 1000 };
        }
        failure = await errorFrom(res, this.opts.baseUrl);
        if (!RETRYABLE.has(res.status)) throw failure;
        const after = Number(res.headers.get('retry-after'));
        if (Number.isFinite(after) && after > 0) wait = Math.min(after * 1000, 30_000);
      } catch (err) {
        if (o.signal?.aborted) throw new AbortedError();
        if (err instanceof RemoteError && err.status !== 0 && !RETRYABLE.has(err.status)) throw err;
        if (!(err instanceof RemoteError)) throw err; // an image error: retrying cannot help
        failure = err;
      }
      if (delivered || attempt >= retries) throw failure;
      wait ??= Math.min((this.opts.backoffMs ?? 500) * 2 ** attempt, 8_000);
      this.opts.log?.(`remote: ${failure.message}; retry ${attempt + 1}/${retries} in ${Math.round(wait)} ms`);
      await sleep(wait, o.signal);
    }
  }

  private headers(): Record<string, string> {
    return this.opts.apiKey ? { authorization: `Bearer ${this.opts.apiKey}` } : {};
  }

  private async post(body: string, signal?: AbortSignal): Promise<Response> {
    const timeout = AbortSignal.timeout(this.opts.timeoutMs ?? 120_000);
    try {
      return await fetch(this.endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...this.headers() },
        body,
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      throw new RemoteError(0, `${this.opts.baseUrl}: ${causeOf(err as Error)}`, { cause: err });
    }
  }
}

async function toMessages(turns: ChatTurn[], maxImageBytes: number): Promise<object[]> {
  const out: object[] = [];
  for (const t of turns) {
    if (t.role === 'assistant' || !t.images?.length) {
      out.push({ role: t.role, content: t.text });
      continue;
    }
    const parts: object[] = [{ type: 'text', text: t.text }];
    for (const image of t.images) parts.push({ type: 'image_url', image_url: { url: await imageUrl(image, maxImageBytes) } });
    out.push({ role: 'user', content: parts });
  }
  return out;
}

async function imageUrl(image: ImageInput, maxBytes: number): Promise<string> {
  if ('preprocessed' in image) throw new ImageDecodeError(image.name ?? 'image', 'a remote model needs the image file, not pixel values');
  if ('bytes' in image) {
    if (image.bytes.byteLength > maxBytes) throw new ImageTooLargeError(image.name, `larger than ${maxBytes} bytes`);
    return toDataUrl(image.bytes, image.name);
  }
  const s = await fsp.stat(image.path).catch(() => undefined);
  if (!s?.isFile()) throw new ImageDecodeError(image.path, s ? 'not a regular file' : 'no such file');
  if (s.size > maxBytes) throw new ImageTooLargeError(image.path, `larger than ${maxBytes} bytes`);
  return toDataUrl(new Uint8Array(await fsp.readFile(image.path)), image.path);
}

type Parsed = Omit<RemoteAnswer, 'seconds'>;

async function readJson(res: Response): Promise<Parsed> {
  let body: any;
  try {
    body = await res.json();
  } catch (err) {
    // a SyntaxError is a bad answer; anything else is the connection dropping mid-body (retryable)
    throw new RemoteError(err instanceof SyntaxError ? res.status : 0, `the server's answer is ${err instanceof SyntaxError ? 'not JSON' : 'cut short'}`, { cause: err });
  }
  const choice = body?.choices?.[0];
  if (typeof choice?.message?.content !== 'string') throw new RemoteError(res.status, 'the server answered without a message');
  return { text: choice.message.content, finishReason: String(choice.finish_reason ?? 'stop'), promptTokens: body.usage?.prompt_tokens ?? 0, newTokens: body.usage?.completion_tokens ?? 0 };
}

/** Server-sent events: `data: {chunk}` blocks, then `data: [DONE]`. */
async function readStream(res: Response, onDelta: (t: string) => void): Promise<Parsed> {
  const decoder = new TextDecoder();
  let buffer = '';
  const out: Parsed = { text: '', finishReason: 'stop', promptTokens: 0, newTokens: 0 };
  let done = false;
  try {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n/g, '\n');
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
        if (!data) continue;
        if (data === '[DONE]') {
          done = true;
          continue;
        }
        const json = JSON.parse(data);
        if (json.error) throw new RemoteError(res.status, `the server stopped the answer: ${json.error.message ?? 'unknown error'}`);
        if (json.usage) {
          out.promptTokens = json.usage.prompt_tokens ?? 0;
          out.newTokens = json.usage.completion_tokens ?? 0;
        }
        for (const c of json.choices ?? []) {
          const text = c.delta?.content;
          if (typeof text === 'string' && text) {
            out.text += text;
            onDelta(text);
          }
          if (c.finish_reason) out.finishReason = c.finish_reason;
        }
      }
    }
  } catch (err) {
    if (err instanceof RemoteError) throw err;
    throw new RemoteError(0, `the connection broke during the answer: ${causeOf(err as Error)}`, { cause: err });
  }
  if (!done) throw new RemoteError(0, 'the answer ended before the server said it was done');
  return out;
}

async function errorFrom(res: Response, where: string): Promise<Error> {
  const text = await res.text().catch(() => '');
  let e: { message?: string; code?: string } = {};
  try {
    e = JSON.parse(text).error ?? {};
  } catch {
    e = { message: text.slice(0, 200) };
  }
  const message = `${where}: HTTP ${res.status}${e.message ? `: ${e.message}` : ''}`;
  if (e.code === 'invalid_image' || e.code === 'invalid_base64') return new ImageDecodeError('image', message);
  if (e.code === 'image_too_large' || (res.status === 413 && e.code !== 'request_too_large')) return new ImageTooLargeError('image', message);
  return new RemoteError(res.status, message);
}

function causeOf(err: Error): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? err.message;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(new AbortedError());
    }, { once: true });
  });
}
