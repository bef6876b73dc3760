// Requests to the Hub (or the mirror HF_ENDPOINT names), with the rules every hub request follows:
//   - redirects only to https, or within the endpoint's own origin (a local mirror on http):
//     never from the Hub to some plain-http host, where anyone on the path could swap the bytes;
//   - the token (HF_TOKEN) goes to the endpoint's host only, never to a CDN after a redirect;
//   - headers that vouch for content (X-Linked-Etag, X-Linked-Size, ETag as a git blob id,
//     X-Repo-Commit) count only when the endpoint's host sent them, never a CDN or another hop;
//   - proxies: `agent` when given; else HTTPS_PROXY / HTTP_PROXY / NO_PROXY from the environment
//     (the CLI; https through an http proxy's CONNECT tunnel) unless `envProxy: false` (the extension
//     host, whose http/https modules VS Code already patches with the user's proxy settings).

import * as http from 'node:http';
import * as https from 'node:https';
import * as tls from 'node:tls';
import { AbortedError, DownloadError } from '../core';

export interface HubRequestOptions {
  /** default: process.env.HF_ENDPOINT ?? 'https://huggingface.co' */
  endpoint?: string;
  /** Hub token (gated repos); default process.env.HF_TOKEN */
  token?: string;
  agent?: http.Agent;
  /** extra certificate authorities for https (a mirror's own CA; tests) */
  ca?: string | Buffer;
  /** follow HTTPS_PROXY / HTTP_PROXY / NO_PROXY (default true; ignored when `agent` is given) */
  envProxy?: boolean;
  signal?: AbortSignal;
}

export const DEFAULT_ENDPOINT = 'https://huggingface.co';
const MAX_REDIRECTS = 10;

export function endpointOf(opts: HubRequestOptions): string {
  return (opts.endpoint ?? process.env.HF_ENDPOINT ?? DEFAULT_ENDPOINT).replace(/\/+$/, '');
}

export function tokenOf(opts: HubRequestOptions): string | undefined {
  return opts.token ?? (process.env.HF_TOKEN || undefined);
}

/** Headers the endpoint's host sent along the redirect chain (never a CDN's). */
export interface HubHeaders {
  linkedSha256?: string;
  linkedSize?: number;
  gitSha1?: string;
  commit?: string;
}

/** A network-level failure (reset, timeout, truncated body): worth another try. */
export class TransferError extends Error {}

/** Why a redirect from `from` to `to` is refused, or undefined when it may be followed. */
export function refusedRedirect(endpoint: URL, to: URL): string | undefined {
  if (to.protocol === 'https:') return undefined;
  if (to.protocol === 'http:' && to.origin === endpoint.origin) return undefined;
  return `a redirect to ${to.protocol}//${to.host} was refused: downloads follow redirects to https only`;
}

/**
 * GET (or HEAD) with the redirect rules above. Returns the final response (any status) and the
 * Hub's headers collected on the way.
 */
export async function hubRequest(
  url: string,
  opts: HubRequestOptions & { headers?: Record<string, string>; method?: string; name: string },
): Promise<{ res: http.IncomingMessage; hub: HubHeaders; url: URL }> {
  const endpoint = new URL(endpointOf(opts));
  const token = tokenOf(opts);
  const hub: HubHeaders = {};
  let at = new URL(url);
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'llava-vscode', 'accept-encoding': 'identity', ...opts.headers };
    const onHub = at.host === endpoint.host;
    if (token && onHub) headers.authorization = `Bearer ${token}`;
    const res = await send(at, headers, opts, opts.method ?? 'GET');
    if (onHub) collectHubHeaders(res, hub);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      const next = new URL(res.headers.location, at);
      const refused = refusedRedirect(endpoint, next);
      if (refused) throw new DownloadError(`${opts.name}: ${refused}`);
      at = next;
      continue;
    }
    return { res, hub, url: at };
  }
  throw new DownloadError(`${opts.name}: more than ${MAX_REDIRECTS} redirects`);
}

/** One line for an HTTP answer that is not a success, with the Hub's error code when it sent one. */
export function httpFailure(name: string, res: http.IncomingMessage): DownloadError {
  const status = res.statusCode ?? 0;
  const code = res.headers['x-error-code'] ? ` ${String(res.headers['x-error-code'])}` : '';
  const why =
    status === 404
      ? 'not found on the Hub (wrong name or revision?)'
      : status === 401 || status === 403
        ? 'access denied (gated or private repository: log in and accept its licence, or set HF_TOKEN)'
        : `the server answered HTTP ${status}`;
  return new DownloadError(`${name}: ${why} [HTTP ${status}${code}]`);
}

function collectHubHeaders(res: http.IncomingMessage, hub: HubHeaders): void {
  const h = res.headers;
  const linked = unquote(h['x-linked-etag']);
  if (linked && /^[0-9a-f]{64}$/.test(linked)) hub.linkedSha256 ??= linked;
  const linkedSize = Number(h['x-linked-size']);
  if (h['x-linked-size'] !== undefined && Number.isSafeInteger(linkedSize)) hub.linkedSize ??= linkedSize;
  if (typeof h['x-repo-commit'] === 'string' && /^[0-9a-f]{40}$/.test(h['x-repo-commit'])) hub.commit ??= h['x-repo-commit'];
  // the Hub's own 200 for a non-LFS file carries the git blob id as ETag
  const etag = unquote(h.etag);
  const status = res.statusCode ?? 0;
  if (etag && /^[0-9a-f]{40}$/.test(etag) && (status === 200 || status === 206)) hub.gitSha1 = etag;
}

function unquote(v: string | string[] | undefined): string | undefined {
  if (typeof v !== 'string') return undefined;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
}

function send(url: URL, headers: Record<string, string>, opts: HubRequestOptions, method: string): Promise<http.IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!mod) return Promise.reject(new DownloadError(`${url.href}: unsupported protocol`));
  const proxy = opts.agent || opts.envProxy === false ? undefined : proxyFor(url);
  if (proxy) return sendThroughProxy(url, proxy, headers, opts, method);
  // an agent is protocol-specific (an https.Agent cannot carry http): use it where it fits
  const agentProtocol = (opts.agent as { protocol?: string } | undefined)?.protocol;
  const agent = opts.agent && (agentProtocol === undefined || agentProtocol === url.protocol) ? opts.agent : undefined;
  return finish(mod.request(url, { method, headers, agent, signal: opts.signal, timeout: 60_000, ...(opts.ca && url.protocol === 'https:' ? { ca: opts.ca } : {}) }), url, opts);
}

function finish(req: http.ClientRequest, url: URL, opts: HubRequestOptions): Promise<http.IncomingMessage> {
  return new Promise((resolve, reject) => {
    req.on('response', resolve);
    req.end();
    req.on('timeout', () => req.destroy(new Error('no answer for 60 s')));
    req.on('error', (err) => {
      if (opts.signal?.aborted) reject(new AbortedError('Download cancelled'));
      else reject(new TransferError(`${url.host}: ${err.message}`, { cause: err }));
    });
  });
}

/** The proxy the environment names for `url`, unless NO_PROXY exempts its host. */
export function proxyFor(url: URL, env: NodeJS.ProcessEnv = process.env): URL | undefined {
  const noProxy = (env.NO_PROXY ?? env.no_proxy ?? '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const host = url.hostname.toLowerCase();
  if (noProxy.some((n) => n === '*' || host === n.replace(/^\./, '') || host.endsWith(n.startsWith('.') ? n : `.${n}`))) return undefined;
  const raw = url.protocol === 'https:' ? (env.HTTPS_PROXY ?? env.https_proxy ?? env.HTTP_PROXY ?? env.http_proxy) : (env.HTTP_PROXY ?? env.http_proxy);
  if (!raw) return undefined;
  try {
    const p = new URL(raw.includes('://') ? raw : `http://${raw}`);
    return p.protocol === 'http:' ? p : undefined; // an https proxy would need TLS to the proxy too: not supported
  } catch {
    return undefined;
  }
}

/** http: the absolute URL to the proxy; https: a CONNECT tunnel, then TLS to the real host through it. */
function sendThroughProxy(url: URL, proxy: URL, headers: Record<string, string>, opts: HubRequestOptions, method: string): Promise<http.IncomingMessage> {
  const auth = proxy.username ? { 'proxy-authorization': `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` } : {};
  const port = Number(proxy.port || 80);
  if (url.protocol === 'http:') {
    return finish(http.request({ host: proxy.hostname, port, method, path: url.href, headers: { ...headers, host: url.host, ...auth }, signal: opts.signal, timeout: 60_000 }), url, opts);
  }
  return new Promise((resolve, reject) => {
    const target = `${url.hostname}:${url.port || 443}`;
    const connect = http.request({ host: proxy.hostname, port, method: 'CONNECT', path: target, headers: { host: target, ...auth }, signal: opts.signal, timeout: 60_000 });
    connect.on('connect', (res, socket) => {
      if (res.statusCode !== 200) {
        socket.destroy();
        reject(new DownloadError(`${url.host}: the proxy ${proxy.host} refused the tunnel (HTTP ${res.statusCode})`));
        return;
      }
      const secure = tls.connect({ socket, servername: url.hostname, ...(opts.ca ? { ca: opts.ca } : {}) });
      // no agent: the request goes over `secure`, the tunnel, which ends with it
      const req = https.request(url, { method, headers: { ...headers, connection: 'close' }, signal: opts.signal, timeout: 60_000, createConnection: () => secure });
      finish(req, url, opts).then(resolve, reject);
    });
    connect.on('timeout', () => connect.destroy(new Error('no answer from the proxy for 60 s')));
    connect.on('error', (err) => {
      if (opts.signal?.aborted) reject(new AbortedError('Download cancelled'));
      else reject(new TransferError(`${proxy.host} (proxy): ${err.message}`, { cause: err }));
    });
    connect.end();
  });
}

/** Reads a JSON body, at most `maxBytes`. */
export async function readJsonBody(res: http.IncomingMessage, name: string, maxBytes = 16 * 1024 * 1024): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of res) {
    n += (chunk as Buffer).length;
    if (n > maxBytes) {
      res.destroy();
      throw new DownloadError(`${name}: answer larger than ${maxBytes} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch (err) {
    throw new DownloadError(`${name}: the answer is not JSON (${(err as Error).message})`);
  }
}
