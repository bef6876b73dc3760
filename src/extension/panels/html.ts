// The chat webview's HTML, shared by the panel and the side view. Strict CSP: no inline script or
// style, scripts only with this load's nonce, images only from the bundle folder or blob:/data: URLs
// (image bytes arrive by message and are shown through blob: URLs, so the image's own folder never
// becomes a resource root).

import * as vscode from 'vscode';
import { randomBytes } from 'node:crypto';
import type { Surface } from '../../protocol';

/** The only folder the webview may load from. */
export function webviewRoot(extensionUri: vscode.Uri): vscode.Uri {
  return vscode.Uri.joinPath(extensionUri, 'dist', 'webview');
}

export function webviewOptions(extensionUri: vscode.Uri): vscode.WebviewOptions {
  return { enableScripts: true, localResourceRoots: [webviewRoot(extensionUri)] };
}

export function chatHtml(webview: vscode.Webview, extensionUri: vscode.Uri, surface: Surface): string {
  const root = webviewRoot(extensionUri);
  const asset = (name: string) => webview.asWebviewUri(vscode.Uri.joinPath(root, name)).toString();
  const nonce = randomBytes(16).toString('base64');
  const csp = [
    `default-src 'none'`,
    `img-src ${webview.cspSource} blob: data:`,
    `style-src ${webview.cspSource}`,
    `font-src ${webview.cspSource}`,
    `script-src 'nonce-${nonce}'`,
  ].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="UTF-8">
  <meta http-equiv="Content-Security-Policy" content="${csp}">
  <meta name="viewport" content="width=device-width, initial-scale=1.0">
  <link rel="stylesheet" href="${asset('codicon.css')}" id="vscode-codicon-stylesheet">
  <link rel="stylesheet" href="${asset('chat.css')}">
  <title>LLaVA Chat</title>
</head>
<body data-surface="${surface}">
  <div id="app" role="application" aria-label="LLaVA chat"></div>
  <script nonce="${nonce}" src="${asset('chat.js')}"></script>
</body>
</html>`;
}
