// The one way a workspace file is read: regular files only, symlinks resolved and kept inside the
// folder the user chose, a bounded read, and FIFOs / devices refused without ever being opened.
//
// Why each step (all were found by attacking the product, issue 14):
// - `stat` on a link to /dev/zero says size 0, and `readFile` then reads forever (6 GB, SIGSEGV);
// - opening a FIFO blocks until a writer appears: `ask` and `caption` hung, deaf to Ctrl+C;
// - a link named `cat.png` pointing at /etc/passwd or at a photo outside the workspace was read;
// - a file can be swapped between the check and the open: the open uses O_NOFOLLOW | O_NONBLOCK
//   and the handle is checked again (same inode, still a regular file) before one byte is read.

import { constants, promises as fsp, type Stats } from 'node:fs';
import * as path from 'node:path';
import { FileRefusedError } from '../core';

export interface SafeFileOptions {
  /** largest file accepted, in bytes */
  maxBytes: number;
  /** when given, the file's real path (links resolved) must be inside this folder's real path */
  root?: string;
  /** the name used in errors (default: the path as given) */
  name?: string;
}

/** A file that passed the checks: what to open, and what it was when checked. */
export interface CheckedFile {
  /** the path as given */
  path: string;
  /** links resolved */
  real: string;
  size: number;
  dev: number;
  ino: number;
  /** the path itself is a symbolic link */
  viaLink: boolean;
}

/** True when `p` is `root` or below it (both absolute; compared as given, no link resolution). */
export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

/** What a non-regular file is, in words. */
export function kindOf(st: Stats): string {
  if (st.isDirectory()) return 'a folder';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isSocket()) return 'a socket';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

function errnoOf(err: unknown): string {
  return (err as NodeJS.ErrnoException)?.code ?? String(err);
}

/**
 * Checks a file without opening it: exists, links resolved (a dangling one is refused), inside
 * `root` when given, a regular file, at most `maxBytes`. Throws FileRefusedError naming the file.
 */
export async function checkRegularFile(file: string, opts: SafeFileOptions): Promise<CheckedFile> {
  const name = opts.name ?? file;
  let lst: Stats;
  try {
    lst = await fsp.lstat(file);
  } catch (err) {
    if (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ENOTDIR') throw new FileRefusedError(name, 'missing', 'no such file', { cause: err });
    throw new FileRefusedError(name, 'unreadable', `cannot read file (${errnoOf(err)})`, { cause: err });
  }
  const viaLink = lst.isSymbolicLink();
  let real: string;
  try {
    real = await fsp.realpath(file);
  } catch (err) {
    if (viaLink && (errnoOf(err) === 'ENOENT' || errnoOf(err) === 'ELOOP')) {
      throw new FileRefusedError(name, 'dangling-link', errnoOf(err) === 'ELOOP' ? 'symbolic link loop' : 'symbolic link to a missing file', { cause: err });
    }
    throw new FileRefusedError(name, 'unreadable', `cannot resolve the path (${errnoOf(err)})`, { cause: err });
  }
  if (opts.root !== undefined) {
    let rootReal: string;
    try {
      rootReal = await fsp.realpath(opts.root);
    } catch (err) {
      throw new FileRefusedError(name, 'unreadable', `cannot resolve the folder ${opts.root} (${errnoOf(err)})`, { cause: err });
    }
    if (!isInside(rootReal, real)) {
      throw new FileRefusedError(name, 'outside', `${viaLink ? 'symbolic link leads' : 'resolves'} outside the folder ${opts.root}; not read`);
    }
  }
  // stat of the resolved path: no open, so a FIFO or a device is never touched
  let st: Stats;
  try {
    st = viaLink ? await fsp.stat(real) : lst;
  } catch (err) {
    throw new FileRefusedError(name, 'unreadable', `cannot read file (${errnoOf(err)})`, { cause: err });
  }
  if (!st.isFile()) throw new FileRefusedError(name, 'not-regular', `${kindOf(st)}, not a regular file; not read`);
  if (st.size > opts.maxBytes) {
    throw new FileRefusedError(name, 'too-large', `file is ${st.size} bytes, over the limit of ${opts.maxBytes} bytes`);
  }
  return { path: file, real, size: st.size, dev: st.dev, ino: st.ino, viaLink };
}

/**
 * Reads a checked regular file: opened without following a link and without blocking, the handle
 * re-checked against the first check, at most `maxBytes` read (a file that grows past it is refused).
 */
export async function readRegularFile(file: string, opts: SafeFileOptions): Promise<Buffer> {
  const name = opts.name ?? file;
  const checked = await checkRegularFile(file, opts);
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(checked.real, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    throw new FileRefusedError(name, 'unreadable', `cannot open file (${errnoOf(err)})`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.ino !== checked.ino || st.dev !== checked.dev) {
      throw new FileRefusedError(name, 'not-regular', 'changed while being opened; not read');
    }
    // [min(size, maxBytes) + 1] u8: one byte more than allowed tells a file that grew past the bound
    let buf = Buffer.allocUnsafe(Math.min(st.size, opts.maxBytes) + 1);
    let total = 0;
    for (;;) {
      if (total === buf.length) {
        if (buf.length > opts.maxBytes) break;
        const bigger = Buffer.allocUnsafe(Math.min(buf.length * 2, opts.maxBytes + 1));
        buf.copy(bigger, 0, 0, total);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, total, buf.length - total, total);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    if (total > opts.maxBytes) throw new FileRefusedError(name, 'too-large', `file grew past the limit of ${opts.maxBytes} bytes; not read`);
    return buf.subarray(0, total);
  } catch (err) {
    if (err instanceof FileRefusedError) throw err;
    throw new FileRefusedError(name, 'unreadable', `cannot read file (${errnoOf(err)})`, { cause: err });
  } finally {
    await handle.close().catch(() => undefined);
  }
}
