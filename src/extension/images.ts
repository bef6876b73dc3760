// Reading an image the user named (Explorer, preview, drop, picker, a restored chat) into bytes for the
// webview and the engine. Workspace files are untrusted input (issue 14):
// - `file:` URIs are read through src/files: a regular file only (a FIFO or a device is never opened),
//   links resolved and kept inside the workspace folder that holds the file (or, for a file outside any
//   folder that the user chose through a command or our picker, inside its own folder), bounded size;
// - other schemes (remote, virtual workspaces) through `workspace.fs`: a plain file, not a link, bounded;
// - URIs that come from the webview (a drop, a restored chat's state) are `untrusted`: only inside the
//   open workspace folders, or ones this window's own picker / commands returned before.

import * as vscode from 'vscode';
import * as path from 'node:path';
import { readRegularFile } from '../files';
import { IMAGE_EXTENSIONS, MAX_IMAGE_BYTES, mimeForName, standaloneBytes, type ChatImageData } from '../protocol';
import { newId } from './ids';

/** Images one drop or pick may add at once. */
export const MAX_IMAGES_PER_ATTACH = 20;

/** URIs the user chose through our picker or a command in this window: a restored chat may re-read them. */
const chosenByUser = new Set<string>();

export interface ReadImageOptions {
  /** the URI came from the webview (drop, restored state): workspace folders or earlier user choices only */
  untrusted?: boolean;
}

/** Reads an image: see the rules at the top of this file. Errors are one line naming the file. */
export async function readImage(uri: vscode.Uri, opts: ReadImageOptions = {}): Promise<ChatImageData> {
  const name = path.posix.basename(uri.path) || uri.toString();
  const mime = mimeForName(name);
  if (!mime) throw new Error(`${name} is not an image this extension reads (${IMAGE_EXTENSIONS.join(', ')}).`);
  const folder = vscode.workspace.getWorkspaceFolder(uri);
  if (opts.untrusted) {
    if (!folder && !chosenByUser.has(uri.toString())) throw new Error(`${name}: not inside an open workspace folder; not read.`);
  } else chosenByUser.add(uri.toString());

  let bytes: Uint8Array;
  if (uri.scheme === 'file') {
    const root = folder?.uri.scheme === 'file' ? folder.uri.fsPath : path.dirname(uri.fsPath);
    bytes = await readRegularFile(uri.fsPath, { maxBytes: MAX_IMAGE_BYTES, root, name: uri.fsPath }).catch((err: unknown) => {
      // FileRefusedError's message is already one line naming the file
      throw new Error(err instanceof Error ? err.message : String(err));
    });
  } else {
    const stat = await vscode.workspace.fs.stat(uri);
    // a link cannot be resolved through workspace.fs: where it leads cannot be checked, so it is not read
    if (stat.type !== vscode.FileType.File) throw new Error(`${name}: not a regular file${stat.type & vscode.FileType.SymbolicLink ? ' (a symbolic link)' : ''}; not read.`);
    if (stat.size > MAX_IMAGE_BYTES) throw new Error(`${name} is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB.`);
    bytes = await vscode.workspace.fs.readFile(uri);
    if (bytes.byteLength > MAX_IMAGE_BYTES) throw new Error(`${name} is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB.`);
  }
  // readFile over a remote connection returns a view into a larger message buffer (and ours a Buffer
  // slice): copy it so that posting it to the webview (which transfers buffers) carries exactly the file
  return { id: newId('i'), name, mime, uri: uri.toString(), bytes: standaloneBytes(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) };
}
