// Downloads a DownloadPlan (plan.ts: the files chosen from the Hub's listing, at the commit the
// listing resolved) into `<destRoot>/<plan.id>`: resumable (Range), verified, atomic (write
// `<file>.part`, rename into place), cancellable (an AbortSignal leaves the .part for the next
// try), one downloader per folder (folderLock.ts), free disk space checked before the first byte.
//
// What is verified, per file, in this order:
//   1. the sha256 of the plan: the catalog's pin, else the Hub's own file list (LFS files);
//   2. else the LFS checksum header the Hub host sends on a resolve request (`X-Linked-Etag`);
//   3. else, for small non-LFS files, the git blob id (from the listing, else the Hub host's ETag);
//   4. else the size only. The manifest records which of these happened.
// Headers count only from the endpoint's host (http.ts), never from a CDN. Bytes never exceed the
// expected size; when no size is known at all, `maxUnknownSizeBytes` caps the file.
// The manifest `.llava-download.json` lists the plan (repo, commit, variant map) and the completed
// files; a file that is there, on disk with its recorded size and the plan's sha256, is skipped.

import { createHash, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import type * as http from 'node:http';
import { join, dirname } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { AbortedError, ChecksumError, DownloadError, throwIfAborted } from '../core';
import { checkDiskSpace, type FreeBytes } from './diskSpace';
import { isComplete, localPath, readManifest, writeManifest, type LockedFile, type VerifiedBy } from './manifest';
import { acquireFolderLock, type LockHolder } from './folderLock';
import { endpointOf, httpFailure, hubRequest, TransferError, type HubHeaders, type HubRequestOptions } from './http';
import type { DownloadPlan, PlannedFile } from './plan';

export interface DownloadProgress {
  file: string;
  fileBytes: number;
  fileTotal?: number;
  /** all files of this download so far, including ones already on disk */
  bytes: number;
  /** known only when the catalog has every size */
  total?: number;
}

export interface DownloadOptions extends HubRequestOptions {
  onProgress?: (p: DownloadProgress) => void;
  /** extra attempts per file after a network failure, each resuming from the .part (default 3) */
  retries?: number;
  /** minimum ms between progress callbacks for one file (default 200) */
  progressIntervalMs?: number;
  /** the most bytes accepted for a file whose size nobody said (default 100 MB) */
  maxUnknownSizeBytes?: number;
  /** false: fail with DOWNLOAD_LOCKED when another process downloads into the folder (default: wait) */
  waitForLock?: boolean;
  /** called when another process holds the folder's lock and this one waits */
  onWaitForLock?: (holder: LockHolder | undefined) => void;
  /** free bytes where the folder lives (tests); default: statfs */
  freeBytes?: FreeBytes;
}

/** non-LFS files are small; above this we do not re-read a file just to check a git blob id */
const GIT_SHA1_MAX_BYTES = 64 * 1024 * 1024;

/** The git blob id hash of `size` bytes, header written: feed it the bytes, then digest('hex'). */
export function gitBlobHash(size: number): Hash {
  return createHash('sha1').update(`blob ${size}\0`);
}
const DEFAULT_UNKNOWN_CAP = 100 * 1000 * 1000;

/** Downloads every file of `plan` into `<destRoot>/<plan.id>` and returns that folder. */
export async function downloadPlan(plan: DownloadPlan, destRoot: string, opts: DownloadOptions = {}): Promise<string> {
  const endpoint = endpointOf(opts);
  const folder = join(destRoot, plan.id);
  await mkdir(folder, { recursive: true });
  const release = await acquireFolderLock(folder, { wait: opts.waitForLock, signal: opts.signal, onWait: opts.onWaitForLock });
  try {
    let manifest = await readManifest(folder);
    if (!manifest || manifest.repo !== plan.repo) manifest = { repo: plan.repo, revision: plan.revision, files: {} };
    manifest = {
      ...manifest,
      revision: plan.revision,
      commit: plan.commit,
      variants: plan.variants,
      label: plan.label,
      ...(plan.licence ? { licence: plan.licence } : {}),
      planned: plan.files.map((f) => f.path),
    };
    const complete = new Set<string>();
    for (const f of plan.files) if (await isComplete(folder, f, manifest.files[f.path])) complete.add(f.path);
    await checkDiskSpace(folder, plan, complete, opts);
    await writeManifest(folder, manifest);

    let doneBytes = 0;
    for (const file of plan.files) {
      throwIfAborted(opts.signal);
      if (complete.has(file.path)) {
        doneBytes += manifest.files[file.path].size;
        opts.onProgress?.({ file: file.path, fileBytes: manifest.files[file.path].size, fileTotal: manifest.files[file.path].size, bytes: doneBytes, total: plan.totalBytes });
        continue;
      }
      const base = doneBytes;
      const result = await downloadWithRetries(endpoint, plan, file, folder, opts, (fileBytes, fileTotal) =>
        opts.onProgress?.({ file: file.path, fileBytes, fileTotal, bytes: base + fileBytes, total: plan.totalBytes }),
      );
      doneBytes += result.size;
      manifest.files[file.path] = result;
      await writeManifest(folder, manifest);
    }
    return folder;
  } finally {
    await release();
  }
}

/** Always from the listed commit, never the branch: a branch that moves mid-download cannot mix. */
function resolveUrl(endpoint: string, plan: DownloadPlan, file: PlannedFile): string {
  const path = file.path.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${plan.repo}/resolve/${plan.commit}/${path}`;
}

async function downloadWithRetries(
  endpoint: string,
  plan: DownloadPlan,
  file: PlannedFile,
  folder: string,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<LockedFile> {
  const retries = opts.retries ?? 3;
  for (let attempt = 0; ; attempt++) {
    try {
      return await downloadFile(endpoint, plan, file, folder, opts, progress);
    } catch (err) {
      if (opts.signal?.aborted) throw new AbortedError('Download cancelled');
      // Only transfer failures are worth another try; HTTP answers and checksums are final.
      if (!(err instanceof TransferError) || attempt >= retries) {
        if (err instanceof TransferError) {
          // say "kept for resuming" only when bytes did arrive (an unreachable host leaves none)
          const kept = await stat(`${localPath(folder, file)}.part`).then((st) => st.size > 0, () => false);
          const note = kept ? '; the partial file is kept for resuming' : '';
          throw new DownloadError(`${plan.repo}/${file.path}: ${err.message} (after ${attempt + 1} attempts${note})`, { cause: err.cause });
        }
        throw err;
      }
      await delay(Math.min(250 * 2 ** attempt, 4000), opts.signal);
    }
  }
}

async function downloadFile(
  endpoint: string,
  plan: DownloadPlan,
  file: PlannedFile,
  folder: string,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<LockedFile> {
  const finalPath = localPath(folder, file);
  const partPath = `${finalPath}.part`;
  await mkdir(dirname(finalPath), { recursive: true });
  const url = resolveUrl(endpoint, plan, file);
  const name = `${plan.repo}/${file.path}`;

  let offset = await sizeOf(partPath);
  const { res, hub } = await request(url, offset, opts, name);
  let expectedSize = file.size ?? hub.linkedSize;
  if (file.size !== undefined && hub.linkedSize !== undefined && hub.linkedSize !== file.size) {
    res.destroy();
    throw new DownloadError(`${name}: the Hub says ${hub.linkedSize} bytes, the file list ${file.size}`);
  }

  // [offset, end) already on disk is hashed first so the digest covers the whole file
  const sha256 = createHash('sha256');
  if (res.statusCode === 416) {
    // Range past the end: the part is complete if it has the expected size; otherwise start over.
    res.resume();
    if (expectedSize === undefined || offset !== expectedSize) {
      await rm(partPath, { force: true });
      return downloadFile(endpoint, plan, file, folder, opts, progress);
    }
    await hashFile(partPath, sha256, opts.signal);
  } else {
    let flags = 'a';
    if (res.statusCode === 206) {
      const start = /^bytes (\d+)-/.exec(String(res.headers['content-range'] ?? ''));
      if (!start || Number(start[1]) !== offset) {
        res.destroy();
        await rm(partPath, { force: true });
        return downloadFile(endpoint, plan, file, folder, opts, progress);
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
    // never more bytes than expected; with no size from anyone, a cap
    const limit = expectedSize ?? opts.maxUnknownSizeBytes ?? DEFAULT_UNKNOWN_CAP;
    await receive(res, partPath, flags, offset, sha256, expectedSize, limit, name, opts, progress);
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
  const blobId = file.blobId ?? hub.gitSha1;
  if (expected) {
    if (actual !== expected) {
      await rm(partPath, { force: true });
      throw new ChecksumError(name, expected, actual);
    }
    verifiedBy = file.sha256From === 'catalog' ? 'catalog-sha256' : 'hub-sha256';
  } else if (blobId && size <= GIT_SHA1_MAX_BYTES) {
    const git = gitBlobHash(size);
    await hashFile(partPath, git, opts.signal);
    const gitActual = git.digest('hex');
    if (gitActual !== blobId) {
      await rm(partPath, { force: true });
      throw new ChecksumError(name, blobId, gitActual);
    }
    verifiedBy = 'git-blob-sha1';
  }
  await rename(partPath, finalPath);
  progress(size, size);
  return {
    size,
    sha256: actual,
    verifiedBy,
    commit: plan.commit,
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
  limit: number,
  name: string,
  opts: DownloadOptions,
  progress: (fileBytes: number, fileTotal?: number) => void,
): Promise<void> {
  const interval = opts.progressIntervalMs ?? 200;
  let bytes = offset;
  let last = 0;
  let tooLarge: DownloadError | undefined;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (bytes + chunk.length > limit) {
        tooLarge = new DownloadError(
          fileTotal === undefined
            ? `${name}: no size was given and the file passed the ${limit}-byte cap`
            : `${name}: the server sent more than the expected ${fileTotal} bytes`,
        );
        cb(tooLarge);
        return;
      }
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
    if (tooLarge) {
      await rm(partPath, { force: true });
      throw tooLarge;
    }
    throw new TransferError((err as Error).message, { cause: err });
  }
  // a body that ended early without an error event (no Content-Length to compare) is caught by
  // the size check of the caller
  if (!res.complete) throw new TransferError('connection closed before the end of the file');
}

/** GET through http.ts (redirect rules, token and header trust); a final answer other than 200/206/416 throws. */
async function request(
  url: string,
  offset: number,
  opts: DownloadOptions,
  name: string,
): Promise<{ res: http.IncomingMessage; hub: HubHeaders }> {
  const { res, hub } = await hubRequest(url, { ...opts, name, headers: offset > 0 ? { range: `bytes=${offset}-` } : {} });
  const status = res.statusCode ?? 0;
  if (status === 200 || status === 206 || status === 416) return { res, hub };
  res.resume();
  throw httpFailure(name, res);
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
