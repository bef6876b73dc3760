// The chat's file chores: the URIs a drop carries, and saving the image with its boxes.

import * as vscode from 'vscode';
import { mimeForName } from '../../protocol';

/** text/uri-list entries from a drop: keep the images, ignore comments and anything unparsable. */
export function parseUris(list: readonly string[]): vscode.Uri[] {
  const out: vscode.Uri[] = [];
  for (const s of list) {
    const line = s.trim();
    if (!line || line.startsWith('#')) continue;
    try {
      const uri = vscode.Uri.parse(line, true);
      if (mimeForName(uri.path)) out.push(uri);
    } catch {
      // not a URI
    }
  }
  return out;
}

/** Save Image with Boxes: the PNG the webview drew, where the user chooses. */
export async function saveImageWithBoxes(log: vscode.LogOutputChannel, name: string, bytes: Uint8Array): Promise<void> {
  const base = name.replace(/\.[^.]*$/, '') || 'image';
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const suggested = `${base.replace(/[\\/:*?"<>|]/g, '_')}-boxes.png`;
  const target = await vscode.window.showSaveDialog({
    defaultUri: folder ? vscode.Uri.joinPath(folder, suggested) : undefined,
    filters: { 'PNG image': ['png'] },
    saveLabel: 'Save Image with Boxes',
  });
  if (!target) return;
  await vscode.workspace.fs.writeFile(target, bytes);
  log.info(`chat: saved the image with boxes to ${target.toString()}`);
}
