// One downloader per model folder at a time, across processes (two VS Code windows, the CLI):
// `.llava-download.lock` is created with O_EXCL and names its holder; the holder touches it every
// few seconds. A second downloader waits until it is gone (or says so and gives up when told not
// to wait). A lock whose holder died is taken over: same host and the pid is gone, or not touched
// for STALE_MS (a holder on another host sharing the folder).

import { readFile, rm, utimes, writeFile, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AbortedError, DownloadLockedError } from '../core';

export const LOCK_FILE = '.llava-download.lock';
const HEARTBEAT_MS = 5_000;
const STALE_MS = 60_000;

export interface LockHolder {
  pid: number;
  host: string;
  startedAt: string;
}

export interface FolderLockOptions {
  /** false: fail at once with DownloadLockedError instead of waiting (default true) */
  wait?: boolean;
  signal?: AbortSignal;
  /** called once when the folder is busy and we start waiting */
  onWait?: (holder: LockHolder | undefined) => void;
  pollMs?: number;
}

/** Takes the folder's lock; resolves to the function that releases it. */
export async function acquireFolderLock(folder: string, opts: FolderLockOptions = {}): Promise<() => Promise<void>> {
  const path = join(folder, LOCK_FILE);
  const me: LockHolder = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) throw new AbortedError('Download cancelled');
    try {
      await writeFile(path, JSON.stringify(me), { flag: 'wx' });
      const beat = setInterval(() => {
        const now = new Date();
        utimes(path, now, now).catch(() => {});
      }, HEARTBEAT_MS);
      beat.unref();
      return async () => {
        clearInterval(beat);
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = await readHolder(path);
    if (await isStale(path, holder)) {
      await rm(path, { force: true });
      continue;
    }
    const who = holder ? `process ${holder.pid} on ${holder.host} since ${holder.startedAt}` : 'another process';
    if (opts.wait === false) {
      throw new DownloadLockedError(folder, `${folder} is being downloaded by ${who}; try again when it has finished`);
    }
    if (!told) {
      told = true;
      opts.onWait?.(holder);
    }
    await sleep(opts.pollMs ?? 250, opts.signal);
  }
}

async function readHolder(path: string): Promise<LockHolder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, 'utf8')) as LockHolder;
    return typeof h.pid === 'number' && typeof h.host === 'string' ? h : undefined;
  } catch {
    return undefined; // being written right now, or garbage: judged by its age below
  }
}

async function isStale(path: string, holder: LockHolder | undefined): Promise<boolean> {
  if (holder && holder.host === hostname()) {
    try {
      process.kill(holder.pid, 0);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ESRCH') return true;
    }
  }
  try {
    return Date.now() - (await stat(path)).mtimeMs > STALE_MS;
  } catch {
    return false; // gone already: the next try creates it
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), reject(new AbortedError('Download cancelled'))), { once: true });
  });
}
