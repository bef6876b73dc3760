// What a repository holds at a revision, asked before anything is downloaded:
//   GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true
//   -> { sha: <commit>, siblings: [{ rfilename, size, blobId, lfs?: { sha256, size } }] }
// The commit it answers is what the download then fetches from, so a branch that moves halfway
// through cannot mix two commits in one folder.

import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { DownloadError, type VariantChoice } from '../core';
import type { CatalogEntry } from './catalog';
import { gitBlobHash } from './download';
import { planDownload, type DownloadPlan } from './plan';
import { endpointOf, httpFailure, hubRequest, readJsonBody, TransferError, type HubRequestOptions } from './http';

export interface ListedFile {
  path: string;
  /** bytes, when the listing says */
  size?: number;
  /** LFS files: the sha256 of the content (the Hub's own, from its API) */
  sha256?: string;
  /** git blob id (sha1 of "blob <size>\0" + bytes); checks small non-LFS files */
  blobId?: string;
}

export interface RepoListing {
  repo: string;
  /** what was asked: a branch, tag or commit */
  revision: string;
  /** the commit it resolved to */
  commit: string;
  files: ListedFile[];
}

const REPO = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

export async function listRepo(repo: string, revision: string, opts: HubRequestOptions = {}): Promise<RepoListing> {
  if (!REPO.test(repo)) throw new DownloadError(`"${repo}" is not a Hub repository name (owner/name)`);
  const url = `${endpointOf(opts)}/api/models/${repo}/revision/${encodeURIComponent(revision)}?blobs=true`;
  const name = `${repo}@${revision}`;
  return parseListing(await getJson(url, name, `${name} (file list)`, opts), repo, revision);
}

/** GET a JSON answer from the Hub (at most `maxBytes`); every failure is one DownloadError line. */
async function getJson(url: string, name: string, failureName: string, opts: HubRequestOptions, maxBytes?: number): Promise<unknown> {
  let res;
  try {
    ({ res } = await hubRequest(url, { ...opts, name, headers: { accept: 'application/json' } }));
  } catch (err) {
    // offline, DNS, refused, timeout: one typed line (code DOWNLOAD) the UI can turn into "you are offline"
    if (err instanceof TransferError) throw new DownloadError(`${name}: cannot reach the Hub (${err.message})`, { cause: err });
    throw err;
  }
  if (res.statusCode !== 200) {
    res.resume();
    throw httpFailure(failureName, res);
  }
  return readJsonBody(res, name, maxBytes);
}

/** Validates the API's answer; anything unexpected is a one-line DownloadError. */
export function parseListing(json: unknown, repo: string, revision: string): RepoListing {
  const o = json as { sha?: unknown; siblings?: unknown };
  if (!o || typeof o !== 'object' || typeof o.sha !== 'string' || !/^[0-9a-f]{40}$/.test(o.sha) || !Array.isArray(o.siblings)) {
    throw new DownloadError(`${repo}@${revision}: unexpected file list from the Hub (no commit or no siblings)`);
  }
  const files: ListedFile[] = [];
  for (const s of o.siblings as Record<string, unknown>[]) {
    if (!s || typeof s.rfilename !== 'string') continue;
    const lfs = s.lfs as { sha256?: unknown; size?: unknown } | undefined;
    const size = Number.isSafeInteger(lfs?.size) ? (lfs!.size as number) : Number.isSafeInteger(s.size) ? (s.size as number) : undefined;
    files.push({
      path: s.rfilename,
      ...(size !== undefined ? { size } : {}),
      ...(typeof lfs?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(lfs.sha256) ? { sha256: lfs.sha256 } : {}),
      ...(typeof s.blobId === 'string' && /^[0-9a-f]{40}$/.test(s.blobId) ? { blobId: s.blobId } : {}),
    });
  }
  return { repo, revision, commit: o.sha, files };
}

/**
 * Lists the repository at the model's revision and chooses its files (plan.ts), reading its config.json for the
 * variants the model declares (transformers.js_config): from `folder` when the copy there is the listed one (same
 * git blob id: nothing asked), else from the Hub at the listed commit. One network call, two on a first download.
 */
export async function planFromHub(
  model: { repo: string; revision: string; entry?: CatalogEntry; choice?: VariantChoice; folder?: string },
  opts: HubRequestOptions & { provider?: 'cpu' | 'gpu' } = {},
): Promise<DownloadPlan> {
  const listing = await listRepo(model.repo, model.revision, opts);
  const config = await listedConfig(listing, model.folder, opts);
  return planDownload(listing, { entry: model.entry, provider: opts.provider, choice: model.choice, config });
}

/** config.json as of the listed commit, parsed; undefined when the repository has none (planDownload says so). */
async function listedConfig(listing: RepoListing, folder: string | undefined, opts: HubRequestOptions): Promise<unknown> {
  const listed = listing.files.find((f) => f.path === 'config.json');
  if (!listed) return undefined;
  const name = `${listing.repo}@${listing.commit.slice(0, 7)} config.json`;
  if (folder && listed.blobId) {
    const local = await readFile(path.join(folder, 'config.json')).catch(() => undefined);
    if (local && gitBlobHash(local.length).update(local).digest('hex') === listed.blobId) {
      try {
        return JSON.parse(local.toString('utf8'));
      } catch {
        // the listed bytes, not JSON: the Hub's copy says the same, and the engine will name the file
        return undefined;
      }
    }
  }
  return getJson(`${endpointOf(opts)}/${listing.repo}/resolve/${listing.commit}/config.json`, name, name, opts, 1024 * 1024);
}
