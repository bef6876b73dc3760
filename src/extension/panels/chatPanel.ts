// A chat in an editor tab, opened beside the image: one WebviewPanel per image (asking again about
// the same image reveals its panel). Survives window reloads through a WebviewPanelSerializer: the
// webview's persisted state (conversation without bytes) comes back and images are re-read from
// their URIs (pasted images, which have none, are lost).

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { isPersistedState, type ChatImageData } from '../../protocol';
import { ChatController } from './chatController';
import { readImage } from '../images';
import { Conversation } from './conversation';
import { Disposable } from '../disposable';
import { chatHtml, webviewOptions } from './html';

export class ChatPanel extends Disposable {
  static readonly viewType = 'llava.chatPanel';
  private static readonly panels = new Set<ChatPanel>();

  readonly controller: ChatController;

  /** Opens (or reveals) the chat about these images beside the active editor. */
  static async show(ctx: Ctx, images: readonly vscode.Uri[]): Promise<ChatPanel> {
    const key = images[0]?.toString();
    if (key && images.length === 1) {
      for (const p of ChatPanel.panels)
        if (p.controller.current.firstImageUri() === key) {
          p.panel.reveal(vscode.ViewColumn.Beside);
          return p;
        }
    }
    const panel = vscode.window.createWebviewPanel(
      ChatPanel.viewType,
      'LLaVA Chat',
      { viewColumn: vscode.ViewColumn.Beside, preserveFocus: false },
      { ...webviewOptions(ctx.extensionUri), enableFindWidget: true },
    );
    const chat = new ChatPanel(ctx, panel, new Conversation());
    try {
      await chat.controller.attach(images);
    } catch (err) {
      void vscode.window.showErrorMessage(`LLaVA: ${err instanceof Error ? err.message : String(err)}`);
    }
    return chat;
  }

  static registerSerializer(ctx: Ctx): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(ChatPanel.viewType, {
      async deserializeWebviewPanel(panel: vscode.WebviewPanel, state: unknown) {
        panel.webview.options = webviewOptions(ctx.extensionUri);
        const conversation = isPersistedState(state)
          ? new Conversation(state.conversation, await rereadImages(state.conversation.images))
          : new Conversation();
        new ChatPanel(ctx, panel, conversation);
      },
    });
  }

  static disposeAll(): void {
    for (const p of [...ChatPanel.panels]) p.panel.dispose();
  }

  /** for tests and commands: the most recently focused panel */
  static get active(): ChatPanel | undefined {
    let best: ChatPanel | undefined;
    for (const p of ChatPanel.panels) if (!best || p.lastActive > best.lastActive) best = p;
    return best;
  }

  private lastActive = Date.now();

  private constructor(
    ctx: Ctx,
    private readonly panel: vscode.WebviewPanel,
    conversation: Conversation,
  ) {
    super();
    ChatPanel.panels.add(this);
    this.controller = this._register(new ChatController(panel.webview, 'panel', ctx, conversation));
    panel.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'llava.svg');
    panel.title = titleFor(conversation.title);
    this._register(this.controller.onDidChangeTitle((t) => (panel.title = titleFor(t))));
    this._register(
      panel.onDidChangeViewState((e) => {
        if (e.webviewPanel.active) this.lastActive = Date.now();
      }),
    );
    // set the HTML after the controller listens, so the webview's `ready` is never missed
    panel.webview.html = chatHtml(panel.webview, ctx.extensionUri, 'panel');
    this._register(panel.onDidDispose(() => this.dispose()));
  }

  override dispose(): void {
    ChatPanel.panels.delete(this);
    super.dispose();
  }
}

function titleFor(conversationTitle: string): string {
  return conversationTitle === 'New chat' ? 'LLaVA Chat' : `LLaVA: ${conversationTitle}`;
}

/** Images of a restored conversation, read again from their URIs; unreadable ones are skipped. */
export async function rereadImages(metas: readonly { id: string; uri?: string }[]): Promise<ChatImageData[]> {
  const out: ChatImageData[] = [];
  // a restored state is bounded like a drop: at most 100 images are re-read
  for (const m of metas.slice(0, 100)) {
    if (!m.uri) continue;
    try {
      // the state comes from the webview: only workspace files (or ones the user chose this session)
      const img = await readImage(vscode.Uri.parse(m.uri, true), { untrusted: true });
      out.push({ ...img, id: m.id });
    } catch {
      // moved or deleted since: the conversation shows without it
    }
  }
  return out;
}
