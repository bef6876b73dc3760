// Hub download for one catalog entry and variant: resumable (Range), verified (sha256 or the git
// blob id), atomic (write `<file>.part`, rename into place), cancellable (AbortSignal leaves the
// .part for the next try), with throttled progress. Node's http/https only.
//
// What is verified, per file, in this order:
//   1. the catalog's sha256 (pinned entries, scripts/pin-catalog.ts);
//   2. else the Hub's own LFS checksum: a resolve request for an LFS file answers with
//      `X-Linked-Etag: "<sha256>"` and `X-Linked-Size` (on the redirect to the CDN);
//   3. else, for small non-LFS files, the `ETag`, which the Hub sets to the git blob id
//      (sha1 of "blob <size>\0" + bytes);
//   4. else only the size. The lock file records which of these happened.
// The lock file `.llava-download.json` in the model folder lists completed files; a file that is
// there, on disk with its recorded size and, if the catalog pins one, the same sha256, is skipped
// without a request. Unpinned entries are not re-checked against the Hub once complete: delete
// the folder (or pin the catalog) to refresh.
//
// Proxies: pass `agent` (e.g. a proxy agent). Inside VS Code the extension host patches Node's
// http/https modules to apply the user's `http.proxy` settings, so the default agent already goes
// through the proxy there; the forked engine process and the CLI do not get that patch.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import * as http from 'node:http';
import * as https from 'node:https';
import { join, dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { filesFor, type CatalogEntry, type CatalogFile } from './catalog';
import { AbortedError, ChecksumError, DownloadError, throwIfAborted } from '../core';

export interface DownloadProgress {
  file: string;
  fileBytes: number;
  fileTotal?: number;
  /** all files of this download so far, including ones already on disk */
  bytes: number;
  /** known only when the catalog has every size */
  total?: number;
}

export interface DownloadOptions {
  /** default: process.env.HF_ENDPOINT ?? 'https://huggingface.co' */
  endpoint?: string;
  signal?: AbortSignal;
  onProgress?: (p: DownloadProgress) => void;
  /** Hub token (gated repos); sent only to the endpoint's host, never after a cross-host redirect */
  token?: string;
  agent?: http.Agent;
  /** extra attempts per file after a network failure, each resuming from the .part (default 3) */
  retries?: number;
  /** minimum ms between progress callbacks for one file (default 200) */
  progressIntervalMs?: number;
}

export const LOCK_FILE = '.llava-download.json';

export type VerifiedBy = 'catalog-sha256' | 'hub-sha256' | 'git-blob-sha1' | 'size' | 'none';

export interface LockedFile {
  size: number;
  sha256: string;
  verifiedBy: VerifiedBy;
  /** the commit the Hub resolved the revision to (X-Repo-Commit), when it said */
  commit?: string;
  completedAt: string;
}

export interface DownloadLock {
  repo: string;
  revision: string;
  files: Record<string, LockedFile>;
}

const MAX_REDIRECTS = 10;
/** non-LFS files are small; above this we do not re-read a file just to check a git blob id */
const GIT_SHA1_MAX_BYTES = 64 * 1024 * 1024;

/** Downloads every file of `variant` into `<destRoot>/<entry.id>` and returns that folder. */
export async function downloadModel(
  entry: CatalogEntry,
  variant: string,
  destRoot: string,
  opts: DownloadOptions = {},
): Promise<string> {
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const files = filesFor(entry, variant);
  const folder = join(destRoot, entry.id);
  await mkdir(folder, { recursive: true });

  let lock = await readLock(folder);
  if (!lock || lock.repo !== entry.repo || lock.revision !== entry.revision) {
    lock = { repo: entry.repo, revision: entry.revision, files: {} };
  }

  const total = await totalSize(endpoint, entry, files, folder, lock, opts);
  let doneBytes = 0;
  for (const file of files) {
    throwIfAborted(opts.signal);
    const locked = lock.files[file.path];
    if (locked && (await isComplete(folder, file, locked))) {
      doneBytes += locked.size;
      opts.onProgress?.({ file: file.path, fileBytes: locked.size, fileTotal: locked.size, bytes: doneBytes, total });
      continue;
    }
    const base = doneBytes;
    const result = await downloadWithRetries(endpoint, entry, file, folder, opts, (fileBytes, fileTotal) =>
      opts.onProgress?.({ file: file.path, fileBytes, fileTotal, bytes: base + fileBytes, total }),
    );
    doneBytes += result.size;
    lock.files[file.path] = result;
    await writeLock(folder, lock);
  }
  return folder;
}

/**
 * Sum of all file sizes for the progress bar: the catalog's, the lock file's, else asked with one
 * HEAD per file (the Hub's answer, before any CDN redirect, carries X-Linked-Size or
 * Content-Length). Undefined when any size stays unknown; never fails the download.
 */
async function totalSize(
  endpoint: string,
  entry: CatalogEntry,
  files: CatalogFile[],
  folder: string,
  lock: DownloadLock,
  opts: DownloadOptions,
): Promise<number | undefined> {
  let sum = 0;
  for (const f of files) {
    const locked = lock.files[f.path];
    let size = f.size ?? (locked && (await isComplete(folder, f, locked)) ? locked.size : undefined);
    if (size === undefined) {
      try {
        const headers: Record<string, string> = { 'user-agent': 'llava-vscode', 'accept-encoding': 'identity' };
        if (opts.token) headers.authorization = `Bearer ${opts.token}`;
        const res = await get(new URL(resolveUrl(endpoint, entry, f)), headers, opts, 'HEAD');
        res.resume();
        const n = Number(res.headers['x-linked-size'] ?? (res.statusCode === 200 ? res.headers['content-length'] : undefined));
        if (Number.isSafeInteger(n)) size = n;
      } catch {
        if (opts.signal?.aborted) throw new AbortedError('Download cancelled');
      }
    }
    if (size === undefined) return undefined;
    sum += size;
  }
  return sum;
}

function resolveUrl(endpoint: string, entry: CatalogEntry, file: CatalogFile): string {
  const path = file.path.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${entry.repo}/resolve/${encodeURIComponent(entry.revision)}/${path}`;
}

async function isComplete(folder: string, file: CatalogFile, locked: LockedFile): Promise<boolean> {
  if (file.sha256 && file.sha256 !== locked.sha256) return false;
  if (file.size !== undefined && file.size !== locked.size) return false;
  try {
    return (await stat(join(folder, file.path))).size === locked.size;
  } catch {
    return false;
  }
}

async function downloadWithRetries(
  endpoint: string,
  entry: CatalogEntry,
  file: CatalogFile,
  folder: string,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<LockedFile> {
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadFile(endpoint, entry, file, folder, opts, progress);
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError('Download cancelled');
      // Only transfer failures are worth another try; HTTP answers and checksums are final.
      if (!(err instanceof TransferError) || attempt >= retries) {
        if (err instanceof TransferError) {
          throw new DownloadError(`${entry.repo}/${file.path}: ${err.message} (after ${attempt + 1} attempts; the partial file is kept for resuming)`, { cause: err.cause });
        }
        throw err;
      }
      await delay(Math.min(250 * 2 ** attempt, 4000), opts.signal);
    }
  }
}

/** A network-level failure (reset, timeout, truncated body): retryable, .part kept. */
class TransferError extends Error {}

interface HubHeaders {
  linkedSha256?: string;
  linkedSize?: number;
  gitSha1?: string;
  commit?: string;
}

async function downloadFile(
  endpoint: string,
  entry: CatalogEntry,
  file: CatalogFile,
  folder: string,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<LockedFile> {
  const finalPath = join(folder, ...file.path.split('/'));
  const partPath = `${finalPath}.part`;
  await mkdir(dirname(finalPath), { recursive: true });
  const url = resolveUrl(endpoint, entry, file);
  const name = `${entry.repo}/${file.path}`;

  let offset = await sizeOf(partPath);
  const { res, hub } = await request(url, offset, opts, name);
  let expectedSize = file.size ?? hub.linkedSize;

  // [offset, end) already on disk is hashed first so the digest covers the whole file
  const sha256 = createHash('sha256');
  if (res.statusCode === 416) {
    // Range past the end: the part is complete if it has the expected size; otherwise start over.
    res.resume();
    if (expectedSize === undefined || offset !== expectedSize) {
      await rm(partPath, { force: true });
      return downloadFile(endpoint, entry, file, folder, opts, progress);
    }
    await hashFile(partPath, sha256, opts.signal);
  } else {
    let flags = 'a';
    if (res.statusCode === 206) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (!start || Number(start[1]) !== offset) {
        res.destroy();
        await rm(partPath, { force: true });
        return downloadFile(endpoint, entry, file, folder, opts, progress);
      }
      const total = /\/(\d+)$/.exec(String(res.headers['content-range']));
      if (total) expectedSize ??= Number(total[1]);
      await hashFile(partPath, sha256, opts.signal);
    } else {
      // 200: a fresh start, or a server that ignored our Range: either way from byte 0
      offset = 0;
      flags = 'w';
      const len = Number(res.headers['content-length']);
      if (Number.isFinite(len) && res.headers['content-encoding'] === undefined) expectedSize ??= len;
    }
    await receive(res, partPath, flags, offset, sha256, expectedSize, opts, progress);
  }

  const size = await sizeOf(partPath);
  if (expectedSize !== undefined && size !== expectedSize) {
    if (size < expectedSize) throw new TransferError(`got ${size} of ${expectedSize} bytes`);
    await rm(partPath, { force: true });
    throw new DownloadError(`${name}: got ${size} bytes, expected ${expectedSize}`);
  }
  const actual = sha256.digest('hex');
  let verifiedBy: VerifiedBy = expectedSize !== undefined ? 'size' : 'none';
  const expected = file.sha256 ?? hub.linkedSha256;
  if (expected) {
    if (actual !== expected) {
      await rm(partPath, { force: true });
      throw new ChecksumError(name, expected, actual);
    }
    verifiedBy = file.sha256 ? 'catalog-sha256' : 'hub-sha256';
  } else if (hub.gitSha1 && size <= GIT_SHA1_MAX_BYTES) {
    const git = createHash('sha1').update(`blob ${size}\0`);
    await hashFile(partPath, git, opts.signal);
    const gitActual = git.digest('hex');
    if (gitActual !== hub.gitSha1) {
      await rm(partPath, { force: true });
      throw new ChecksumError(name, hub.gitSha1, gitActual);
    }
    verifiedBy = 'git-blob-sha1';
  }
  await rename(partPath, finalPath);
  progress(size, size);
  return {
    size,
    sha256: actual,
    verifiedBy,
    ...(hub.commit ? { commit: hub.commit } : {}),
    completedAt: new Date().toISOString(),
  };
}

/** Streams the body into the part file, hashing as it goes; throttled progress. */
async function receive(
  res: http.IncomingMessage,
  partPath: string,
  flags: string,
  offset: number,
  sha256: Hash,
  fileTotal: number | undefined,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<void> {
  const interval = opts.progressIntervalMs ?? 200;
  let bytes = offset;
  let last = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      sha256.update(chunk);
      bytes += chunk.length;
      const now = Date.now();
      if (now - last >= interval) {
        last = now;
        progress(bytes, fileTotal);
      }
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res, tap, createWriteStream(partPath, { flags }), { signal: opts.signal });
  } catch (err) {
    if (opts.signal?.aborted) throw new AbortedError('Download cancelled');
    throw new TransferError((err as Error).message, { cause: err });
  }
  // a body that ended early without an error event (no Content-Length to compare) is caught by
  // the size check of the caller
  if (!res.complete) throw new TransferError('connection closed before the end of the file');
}

/**
 * GET with redirects. Returns the final response and the Hub's headers seen along the chain
 * (the LFS checksum sits on the redirect, not on the CDN's answer).
 */
async function request(
  startUrl: string,
  offset: number,
  opts: DownloadOptions,
  name: string,
): Promise<{ res: http.IncomingMessage; hub: HubHeaders }> {
  const hub: HubHeaders = {};
  const first = new URL(startUrl);
  let url = first;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const headers: Record<string, string> = { 'user-agent': 'llava-vscode', 'accept-encoding': 'identity' };
    if (offset > 0) headers.range = `bytes=${offset}-`;
    // the token is for the Hub only: a CDN on another host must not see it
    if (opts.token && url.host === first.host) headers.authorization = `Bearer ${opts.token}`;
    const res = await get(url, headers, opts);
    collectHubHeaders(res, hub, url.host === first.host);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      url = new URL(res.headers.location, url);
      continue;
    }
    if (status === 200 || status === 206 || status === 416) return { res, hub };
    res.resume();
    const code = res.headers['x-error-code'] ? ` ${String(res.headers['x-error-code'])}` : '';
    const why =
      status === 404
        ? 'not found on the Hub (wrong file name or revision?)'
        : status === 401 || status === 403
          ? 'access denied (gated or private repository: log in and accept its licence, or set a token)'
          : `the server answered HTTP ${status}`;
    throw new DownloadError(`${name}: ${why} [HTTP ${status}${code}]`);
  }
  throw new DownloadError(`${name}: more than ${MAX_REDIRECTS} redirects`);
}

function collectHubHeaders(res: http.IncomingMessage, hub: HubHeaders, onHub: boolean): void {
  const h = res.headers;
  const linked = unquote(h['x-linked-etag']);
  if (linked && /^[0-9a-f]{64}$/.test(linked)) hub.linkedSha256 ??= linked;
  const linkedSize = Number(h['x-linked-size']);
  if (h['x-linked-size'] !== undefined && Number.isSafeInteger(linkedSize)) hub.linkedSize ??= linkedSize;
  if (typeof h['x-repo-commit'] === 'string') hub.commit ??= h['x-repo-commit'];
  // Only the Hub's own answer (possibly after a same-host redirect) carries the git blob id as
  // ETag; a CDN's ETag means something else.
  const etag = unquote(h.etag);
  if (onHub && etag && /^[0-9a-f]{40}$/.test(etag) && !(res.statusCode! >= 300 && res.statusCode! < 400)) hub.gitSha1 = etag;
}

function unquote(v: string | string[] | undefined): string | undefined {
  if (typeof v !== 'string') return undefined;
  return v.replace(/^W\//, '').replace(/^"|"$/g, '').toLowerCase();
}

function get(url: URL, headers: Record<string, string>, opts: DownloadOptions, method = 'GET'): Promise<http.IncomingMessage> {
  const mod = url.protocol === 'https:' ? https : url.protocol === 'http:' ? http : undefined;
  if (!mod) return Promise.reject(new DownloadError(`${url.href}: unsupported protocol`));
  // a user agent is protocol-specific (an https.Agent cannot carry http): use it where it fits
  const agentProtocol = (opts.agent as { protocol?: string } | undefined)?.protocol;
  const agent = opts.agent && (agentProtocol === undefined || agentProtocol === url.protocol) ? opts.agent : undefined;
  return new Promise((resolve, reject) => {
    const req = mod.request(url, { method, headers, agent, signal: opts.signal, timeout: 60_000 }, resolve);
    req.end();
    req.on('timeout', () => req.destroy(new Error('no answer for 60 s')));
    req.on('error', (err) => {
      if (opts.signal?.aborted) reject(new AbortedError('Download cancelled'));
      else reject(new TransferError(`${url.host}: ${err.message}`, { cause: err }));
    });
  });
}

async function hashFile(path: string, hash: Hash, signal?: AbortSignal): Promise<void> {
  if ((await sizeOf(path)) === 0) return;
  try {
    for await (const chunk of createReadStream(path, { signal })) hash.update(chunk as Buffer);
  } catch (err) {
    if (signal?.aborted) throw new AbortedError('Download cancelled');
    throw err;
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}

export async function readLock(folder: string): Promise<DownloadLock | undefined> {
  try {
    const lock = JSON.parse(await readFile(join(folder, LOCK_FILE), 'utf8')) as DownloadLock;
    return typeof lock === 'object' && lock && typeof lock.files === 'object' ? lock : undefined;
  } catch {
    return undefined; // missing or unreadable: everything is downloaded (and verified) again
  }
}

async function writeLock(folder: string, lock: DownloadLock): Promise<void> {
  const tmp = join(folder, `${LOCK_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(lock, null, 2)}\n`);
  await rename(tmp, join(folder, LOCK_FILE));
}

function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        reject(new AbortedError('Download cancelled'));
      },
      { once: true },
    );
  });
}
