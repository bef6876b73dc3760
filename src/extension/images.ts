// Reading an image the user named (Explorer, preview, drop, picker) into bytes for the webview and
// the engine, through VS Code's file system so remote and virtual workspaces work too.

import * as vscode from 'vscode';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS, MAX_IMAGE_BYTES, mimeForName, standaloneBytes, type ChatImageData } from '../protocol';
import { newId } from './ids';

/** Reads an image through VS Code's file system (works for remote and virtual workspaces too). */
export async function readImage(uri: vscode.Uri): Promise<ChatImageData> {
  const name = path.posix.basename(uri.path) || uri.toString();
  const mime = mimeForName(name);
  if (!mime) throw new Error(`${name} is not an image this extension reads (${IMAGE_EXTENSIONS.join(', ')}).`);
  const stat = await vscode.workspace.fs.stat(uri);
  if (stat.size > MAX_IMAGE_BYTES) throw new Error(`${name} is larger than ${MAX_IMAGE_BYTES / 1024 / 1024} MiB.`);
  // readFile over a remote connection returns a view into a larger message buffer: copy it so that
  // posting it to the webview (which transfers buffers) carries exactly the file
  const bytes = standaloneBytes(await vscode.workspace.fs.readFile(uri));
  return { id: newId('i'), name, mime, uri: uri.toString(), bytes };
}
