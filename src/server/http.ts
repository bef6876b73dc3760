// The HTTP side of `llava serve`: routing, the API key, bounded bodies, JSON and server-sent events in
// the shapes OpenAI clients parse. node:http only (no framework): the surface is three routes.
//
//   GET  /health               {status, model, waiting, busy}
//   GET  /v1/models            {object: 'list', data: [{id, object: 'model', created, owned_by}]}
//   POST /v1/chat/completions  chat.completion, or chat.completion.chunk events then `data: [DONE]`

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { ApiError, errorBody, toApiError } from './errors';
import { parseChatRequest, type RequestLimits } from './request';
import { Scheduler, type BatchModel } from './scheduler';

export interface ServeOptions {
  model: BatchModel;
  /** the id clients send as `model` and see in /v1/models */
  modelName: string;
  host?: string;
  /** 0: any free port */
  port?: number;
  apiKey?: string;
  maxBodyBytes?: number;
  maxImageBytes?: number;
  allowFilesDir?: string;
  allowRemoteImages?: boolean;
  maxBatch?: number;
  maxQueue?: number;
  /** the default and the ceiling of max_tokens */
  maxTokens?: number;
  log?: (line: string) => void;
}

export interface RunningServer {
  readonly url: string;
  readonly port: number;
  readonly scheduler: Scheduler;
  /** stop accepting, let running requests finish (up to `graceMs`, then abort them), close */
  close(graceMs?: number): Promise<void>;
}

export async function startServer(o: ServeOptions): Promise<RunningServer> {
  const limits: RequestLimits = {
    maxImageBytes: o.maxImageBytes ?? 20 * 1024 * 1024,
    allowFilesDir: o.allowFilesDir,
    allowRemoteImages: o.allowRemoteImages ?? false,
    maxImagesPerRequest: 8,
    maxMessages: 256,
    maxTokens: o.maxTokens ?? 1024,
  };
  const maxBody = o.maxBodyBytes ?? 32 * 1024 * 1024;
  const scheduler = new Scheduler(o.model, { maxBatch: o.maxBatch ?? 4, maxQueue: o.maxQueue ?? 64, defaultMaxTokens: Math.min(256, limits.maxTokens) });
  const created = Math.floor(Date.now() / 1000);
  const inFlight = new Set<AbortController>();
  let closing = false;

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => sendError(res, toApiError(err)));
  });
  server.requestTimeout = 0; // a long generation is not a slow client; bodies are bounded by size instead
  server.headersTimeout = 30_000;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname.replace(/\/+$/, '') || '/';
    if (closing) throw new ApiError(503, 'the server is shutting down', 'server_error', 'shutting_down');
    if (route === '/health' && req.method === 'GET') return sendJson(res, 200, { status: 'ok', model: o.modelName, waiting: scheduler.waiting, busy: scheduler.busy });
    if (!authorised(req)) throw new ApiError(401, 'missing or wrong API key (Authorization: Bearer KEY)', 'authentication_error', 'invalid_api_key');
    if (route === '/v1/models' && req.method === 'GET') {
      return sendJson(res, 200, { object: 'list', data: [{ id: o.modelName, object: 'model', created, owned_by: 'llava-vscode' }] });
    }
    if (route === '/v1/chat/completions') {
      if (req.method !== 'POST') throw new ApiError(405, 'use POST', 'invalid_request_error', 'method_not_allowed');
      return chatCompletions(req, res);
    }
    throw new ApiError(404, `no route ${req.method} ${route}`, 'not_found_error', 'unknown_route');
  }

  function authorised(req: IncomingMessage): boolean {
    if (!o.apiKey) return true;
    const given = Buffer.from((req.headers.authorization ?? '').replace(/^Bearer\s+/i, ''));
    const want = Buffer.from(o.apiKey);
    return given.length === want.length && timingSafeEqual(given, want);
  }

  async function chatCompletions(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const type = (req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
    if (type !== 'application/json') {
      req.resume();
      throw new ApiError(415, `the body must be application/json (got "${type || 'none'}")`, 'invalid_request_error', 'unsupported_media_type');
    }
    const raw = await readBody(req, maxBody);
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new ApiError(400, `the body is not valid JSON: ${(err as Error).message}`, 'invalid_request_error', 'invalid_json');
    }
    const controller = new AbortController();
    // the response closing before it ended means the client went away
    res.on('close', () => {
      if (!res.writableEnded) controller.abort();
    });
    inFlight.add(controller);
    try {
      const chat = await parseChatRequest(body, limits, controller.signal);
      if (chat.model !== o.modelName) throw new ApiError(404, `model "${chat.model}" is not served here (this server has "${o.modelName}")`, 'not_found_error', 'model_not_found', 'model');
      const id = `chatcmpl-${randomUUID()}`;
      const started = Math.floor(Date.now() / 1000);
      const chunk = (delta: object, finish: string | null) => ({ id, object: 'chat.completion.chunk', created: started, model: o.modelName, choices: [{ index: 0, delta, finish_reason: finish }] });
      let streaming = false;
      const job = scheduler.submit({
        request: { turns: chat.turns, maxNewTokens: chat.maxTokens, seed: chat.seed },
        sampling: { temperature: chat.temperature || undefined, topP: chat.topP, repetitionPenalty: chat.repetitionPenalty },
        signal: controller.signal,
        onDelta: (text) => {
          if (!chat.stream) return;
          if (!streaming) {
            startEvents(res);
            streaming = true;
            sendEvent(res, chunk({ role: 'assistant', content: '' }, null));
          }
          sendEvent(res, chunk({ content: text }, null));
        },
      });
      let result;
      try {
        result = await job;
      } catch (err) {
        if (!streaming) throw err;
        // headers are gone: the error travels as an event in the same shape, then the stream ends
        const e = toApiError(err);
        sendEvent(res, JSON.parse(errorBody(e)));
        return void res.end();
      }
      const finish = result.stats.stopReason === 'max_tokens' ? 'length' : 'stop';
      o.log?.(`${id}: ${result.stats.promptTokens} prompt + ${result.stats.newTokens} new tokens, ${finish}${chat.stream ? ', streamed' : ''}`);
      const usage = { prompt_tokens: result.stats.promptTokens, completion_tokens: result.stats.newTokens, total_tokens: result.stats.promptTokens + result.stats.newTokens };
      if (!chat.stream) {
        return sendJson(res, 200, {
          id,
          object: 'chat.completion',
          created: started,
          model: o.modelName,
          choices: [{ index: 0, message: { role: 'assistant', content: result.text }, finish_reason: finish, logprobs: null }],
          usage,
        });
      }
      if (!streaming) {
        startEvents(res);
        sendEvent(res, chunk({ role: 'assistant', content: '' }, null));
      }
      sendEvent(res, chunk({}, finish));
      if (chat.includeUsage) sendEvent(res, { id, object: 'chat.completion.chunk', created: started, model: o.modelName, choices: [], usage });
      res.write('data: [DONE]\n\n');
      res.end();
    } finally {
      inFlight.delete(controller);
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 8000, o.host ?? '127.0.0.1', () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;

  return {
    url,
    port: address.port,
    scheduler,
    async close(graceMs = 10_000) {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      const timer = setTimeout(() => {
        for (const c of inFlight) c.abort();
        server.closeAllConnections();
      }, graceMs);
      await closed;
      clearTimeout(timer);
      await scheduler.idle();
    },
  };
}

/** Reads at most `limit` bytes; more is a 413 (and the connection is closed: the rest is not read). */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) {
    return Promise.reject(new ApiError(413, `the request body is larger than ${limit} bytes`, 'invalid_request_error', 'request_too_large'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    req.on('data', (c: Buffer) => {
      total += c.length;
      if (total > limit) {
        req.removeAllListeners('data');
        req.pause();
        reject(new ApiError(413, `the request body is larger than ${limit} bytes`, 'invalid_request_error', 'request_too_large'));
        return;
      }
      chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const text = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function sendError(res: ServerResponse, err: ApiError): void {
  if (res.headersSent) return void res.end();
  const text = errorBody(err);
  // a 413 stops reading the body: tell the client the connection will not be reused
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) };
  if (err.status === 413) headers.connection = 'close';
  res.writeHead(err.status === 499 ? 400 : err.status, headers);
  res.end(text);
}

function startEvents(res: ServerResponse): void {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
}

function sendEvent(res: ServerResponse, value: unknown): void {
  res.write(`data: ${JSON.stringify(value)}\n\n`);
}
