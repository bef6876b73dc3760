// `llava.setRemoteApiKey`: stores the remote server's API key in VS Code's SecretStorage (the OS
// keychain where there is one). An empty entry removes it. The key never goes into settings or logs.

import * as vscode from 'vscode';
import { REMOTE_API_KEY_SECRET } from '../remoteBackend';

export async function setRemoteApiKey(secrets: vscode.SecretStorage): Promise<void> {
  const key = await vscode.window.showInputBox({
    title: 'LLaVA: API key of the remote server',
    prompt: 'Sent as "Authorization: Bearer KEY" to llava.remote.baseUrl. Leave empty to remove the stored key.',
    password: true,
    ignoreFocusOut: true,
  });
  if (key === undefined) return;
  if (key.trim()) {
    await secrets.store(REMOTE_API_KEY_SECRET, key.trim());
    void vscode.window.showInformationMessage('LLaVA: remote API key stored in secret storage.');
  } else {
    await secrets.delete(REMOTE_API_KEY_SECRET);
    void vscode.window.showInformationMessage('LLaVA: remote API key removed.');
  }
}
