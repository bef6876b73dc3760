// What the buttons of guidance.ts do in VS Code: the ones that only open a setting, a help page or
// the log live here (shared by the chat's inline messages and the notifications); the ones that
// change the model (download, local folder, built-in model) are the model store's and the chat's.

import * as vscode from 'vscode';
import type { GuidanceActionId } from './guidance';
import { config } from './config';

/** The README section that says how to run on an NVIDIA GPU. */
const CUDA_HELP_ANCHOR = 'use-an-nvidia-gpu-cuda';

/**
 * Runs an action that needs no model store: settings, help, logs. Returns true when it changed a
 * setting the answer depends on (the chat then answers again).
 */
export async function runSettingAction(id: GuidanceActionId, log: vscode.LogOutputChannel, extensionUri?: vscode.Uri): Promise<boolean> {
  switch (id) {
    case 'proxySettings':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'http.proxy');
      return false;
    case 'switchToAuto':
      await config.setExecutionProvider('auto');
      log.info('llava.executionProvider set to auto');
      return true;
    case 'providerSetting':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'llava.executionProvider');
      return false;
    case 'modelsFolderSetting':
      await vscode.commands.executeCommand('workbench.action.openSettings', 'llava.modelsFolder');
      return false;
    case 'cudaHelp':
      await openHelp(extensionUri, CUDA_HELP_ANCHOR);
      return false;
    case 'selectModel':
      await vscode.commands.executeCommand('llava.selectModel');
      return false;
    case 'showLogs':
      log.show(true);
      return false;
    default:
      return false;
  }
}

/** The extension's README at a section, rendered (works offline and in a browser workbench). */
async function openHelp(extensionUri: vscode.Uri | undefined, anchor: string): Promise<void> {
  const ext = extensionUri ?? vscode.extensions.getExtension('llava-vscode.llava-vscode')?.extensionUri;
  if (!ext) return;
  // the user guide: docs/marketplace/README.md in a development checkout; in an installed VSIX the same
  // text is the extension's README (vsce stores it as readme.md)
  const candidates = [['docs', 'marketplace', 'README.md'], ['readme.md'], ['README.md']].map((p) => vscode.Uri.joinPath(ext, ...p));
  for (const doc of candidates) {
    const found = await vscode.workspace.fs.stat(doc).then(() => true, () => false);
    if (found) {
      await vscode.commands.executeCommand('markdown.showPreview', doc.with({ fragment: anchor }));
      return;
    }
  }
}

/** Guidance Markdown as a notification's plain sentence (notifications show no bold). */
export function plainText(markdown: string): string {
  return markdown.replace(/\*\*/g, '').replace(/`/g, '').replace(/\n+/g, ' ').trim();
}
