// What the language model tool and the @llava participant accept as an image: a path relative to a
// workspace folder, an absolute path, or a URI; always a regular image file inside an open workspace
// folder (its real path too, so a symlink cannot lead outside). Agents choose these strings: anything
// else is refused with one line that says why, which the calling model reads.

import * as vscode from 'vscode';
import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { IMAGE_EXTENSIONS, mimeForName } from '../../protocol';

export class WorkspaceImageError extends Error {}

/** Resolves `ref` to an image URI inside a workspace folder, or throws WorkspaceImageError. */
export async function resolveWorkspaceImage(ref: string | vscode.Uri): Promise<vscode.Uri> {
  const folders = vscode.workspace.workspaceFolders ?? [];
  if (!folders.length) throw new WorkspaceImageError('No workspace folder is open: LLaVA only looks at images inside the workspace.');
  const candidates = typeof ref === 'string' ? toUris(ref.trim(), folders) : [ref];
  if (!candidates.length) throw new WorkspaceImageError('The image reference is empty.');
  let lastError = `${String(ref)}: not found in the workspace folders.`;
  for (const uri of candidates) {
    const folder = vscode.workspace.getWorkspaceFolder(uri);
    if (!folder) {
      lastError = `${displayName(uri)} is outside the workspace folders: refused.`;
      continue;
    }
    if (!mimeForName(path.posix.basename(uri.path))) throw new WorkspaceImageError(`${displayName(uri)} is not an image (${IMAGE_EXTENSIONS.join(', ')}).`);
    const stat = await Promise.resolve(vscode.workspace.fs.stat(uri)).catch(() => undefined);
    if (!stat) {
      lastError = `${displayName(uri)}: no such file in the workspace.`;
      continue;
    }
    if (stat.type & vscode.FileType.Directory || !(stat.type & vscode.FileType.File)) throw new WorkspaceImageError(`${displayName(uri)} is not a regular file.`);
    if (uri.scheme === 'file' && folder.uri.scheme === 'file') {
      const [real, root] = await Promise.all([fsp.realpath(uri.fsPath), fsp.realpath(folder.uri.fsPath)]);
      if (real !== root && !real.startsWith(root + path.sep)) throw new WorkspaceImageError(`${displayName(uri)} links outside the workspace folders: refused.`);
    }
    return uri;
  }
  throw new WorkspaceImageError(lastError);
}

function toUris(ref: string, folders: readonly vscode.WorkspaceFolder[]): vscode.Uri[] {
  if (!ref) return [];
  // a URI (file:, vscode-remote:, ...) but not a Windows drive path like C:\x
  if (/^[a-z][a-z0-9+.-]+:/i.test(ref) && !/^[a-z]:[\\/]/i.test(ref)) return [vscode.Uri.parse(ref, true)];
  if (path.isAbsolute(ref)) return [vscode.Uri.file(ref)];
  // relative: against each folder (joinPath normalises `..`, and the folder check above catches escapes);
  // "folderName/rest" also names a folder of a multi-root workspace
  const rel = ref.replace(/\\/g, '/');
  const out = folders.map((f) => vscode.Uri.joinPath(f.uri, rel));
  const [first, ...rest] = rel.split('/');
  const named = folders.find((f) => f.name === first);
  if (named && rest.length) out.unshift(vscode.Uri.joinPath(named.uri, rest.join('/')));
  return out;
}

/** Workspace-relative where possible: what confirmations and answers show. */
export function displayName(uri: vscode.Uri): string {
  return vscode.workspace.asRelativePath(uri, (vscode.workspace.workspaceFolders?.length ?? 0) > 1);
}
