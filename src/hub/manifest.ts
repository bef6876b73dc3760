// `.llava-download.json`, the manifest of a downloaded model folder: the plan it was made from (repo,
// revision, the commit it resolved to, the variant per part, the planned files) and each completed
// file with its size, sha256 and how it was verified. Later runs load exactly this; a file listed
// here, on disk with its recorded size and the plan's sha256, is never fetched again.

import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { VariantMap } from '../core';
import type { PlannedFile } from './plan';

export const MANIFEST_FILE = '.llava-download.json';

export type VerifiedBy = 'catalog-sha256' | 'hub-sha256' | 'git-blob-sha1' | 'size' | 'none';

export interface LockedFile {
  size: number;
  sha256: string;
  verifiedBy: VerifiedBy;
  /** the commit it was fetched from */
  commit?: string;
  completedAt: string;
}

/** `.llava-download.json`: what was chosen and what is complete. */
export interface DownloadManifest {
  repo: string;
  /** the revision asked for (a branch, tag or commit) */
  revision: string;
  /** the commit it resolved to: later runs load exactly this, they never re-resolve the branch */
  commit?: string;
  variants?: VariantMap;
  label?: string;
  licence?: string;
  /** every file of the plan, complete or not: the folder is ready when each is in `files` */
  planned?: string[];
  files: Record<string, LockedFile>;
}

export async function isComplete(folder: string, file: PlannedFile, locked: LockedFile | undefined): Promise<boolean> {
  if (!locked) return false;
  if (file.sha256 && file.sha256 !== locked.sha256) return false;
  if (file.size !== undefined && file.size !== locked.size) return false;
  try {
    return (await stat(localPath(folder, file))).size === locked.size;
  } catch {
    return false;
  }
}

export async function readManifest(folder: string): Promise<DownloadManifest | undefined> {
  try {
    const m = JSON.parse(await readFile(join(folder, MANIFEST_FILE), 'utf8')) as DownloadManifest;
    return typeof m === 'object' && m && typeof m.repo === 'string' && typeof m.files === 'object' && m.files ? m : undefined;
  } catch {
    return undefined; // missing or unreadable: everything is downloaded (and verified) again
  }
}

export async function writeManifest(folder: string, manifest: DownloadManifest): Promise<void> {
  const tmp = join(folder, `${MANIFEST_FILE}.tmp`);
  await writeFile(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  await rename(tmp, join(folder, MANIFEST_FILE));
}

/** Where a file of the repository (a '/'-separated path) lands in the model folder. */
export function localPath(folder: string, file: { path: string }): string {
  return join(folder, ...file.path.split('/'));
}
