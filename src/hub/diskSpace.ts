// Free disk space, checked before the first byte of a download (and, by callers that offer a
// download, before the offer): what is still to fetch against what the file system says is free,
// with a margin so the disk is not filled to the last byte.

import { mkdir, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { DiskSpaceError } from '../core';
import { isComplete, localPath, readManifest } from './manifest';
import type { DownloadPlan } from './plan';

/** free bytes where a folder lives (tests pass their own) */
export type FreeBytes = (folder: string) => Promise<number | undefined>;

/** kept free beyond the download itself, so the disk is not filled to the last byte */
const DISK_MARGIN_BYTES = 200 * 1000 * 1000;
/**
 * The disk-space check a download makes first, for callers that want it before offering the
 * download: the DiskSpaceError it would throw, or undefined when the plan fits (or free space is
 * unknown). Counts only what is not in `<destRoot>/<plan.id>` yet.
 */
export async function diskSpaceProblem(plan: DownloadPlan, destRoot: string, opts: { freeBytes?: FreeBytes } = {}): Promise<DiskSpaceError | undefined> {
  const folder = join(destRoot, plan.id);
  const manifest = await readManifest(folder);
  const complete = new Set<string>();
  for (const f of plan.files) if (await isComplete(folder, f, manifest?.files[f.path])) complete.add(f.path);
  try {
    await mkdir(destRoot, { recursive: true });
    await checkDiskSpace(folder, plan, complete, { freeBytes: opts.freeBytes ?? ((d) => freeBytesAt(dirname(d))) });
    return undefined;
  } catch (err) {
    if (err instanceof DiskSpaceError) return err;
    throw err;
  }
}

/**
 * Bytes still to fetch (sizes of incomplete files minus what their .part already holds) against
 * the free space where the folder lives, with a margin. Unknown sizes count as 0.
 */
export async function checkDiskSpace(folder: string, plan: DownloadPlan, complete: Set<string>, opts: { freeBytes?: FreeBytes }): Promise<void> {
  let needed = 0;
  for (const f of plan.files) {
    if (complete.has(f.path) || f.size === undefined) continue;
    needed += Math.max(0, f.size - (await sizeOf(`${localPath(folder, f)}.part`)));
  }
  if (needed === 0) return;
  const free = await (opts.freeBytes ?? freeBytesAt)(folder);
  if (free === undefined || free >= needed + DISK_MARGIN_BYTES) return;
  const gb = (n: number) => `${(n / 1e9).toFixed(2)} GB`;
  throw new DiskSpaceError(
    folder,
    needed,
    free,
    `not enough disk space for ${plan.label}: ${gb(needed)} to download (+${gb(DISK_MARGIN_BYTES)} kept free), ${gb(free)} free in ${folder}`,
  );
}

async function freeBytesAt(folder: string): Promise<number | undefined> {
  try {
    const s = await statfs(folder);
    return s.bavail * s.bsize;
  } catch {
    return undefined; // not every file system says: then we do not guess
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return 0;
  }
}
