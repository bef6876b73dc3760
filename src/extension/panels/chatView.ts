// The chat in the LLaVA side bar (webview view `llava.chatView`). With "follow the active image" on,
// the image preview in the active editor becomes the chat's image; each followed image keeps its own
// conversation (in memory, the last few), so switching back to an image shows its answers again.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { isPersistedState } from '../../protocol';
import { ChatController } from './chatController';
import { readImage } from '../images';
import { rereadImages } from './chatPanel';
import { Conversation } from './conversation';
import { Disposable } from '../disposable';
import { chatHtml, webviewOptions } from './html';

/** VS Code's built-in image preview (the media-preview extension). */
export const IMAGE_PREVIEW_VIEW_TYPE = 'imagePreview.previewEditor';
const MAX_FOLLOWED_CONVERSATIONS = 20;

/** The URI of the image preview in the active editor group, if that is what is shown. */
export function activeImagePreview(): vscode.Uri | undefined {
  const input = vscode.window.tabGroups.activeTabGroup.activeTab?.input;
  return input instanceof vscode.TabInputCustom && input.viewType === IMAGE_PREVIEW_VIEW_TYPE ? input.uri : undefined;
}

export class ChatViewProvider extends Disposable implements vscode.WebviewViewProvider {
  static readonly viewId = 'llava.chatView';
  private controller: ChatController | undefined;
  private view: vscode.WebviewView | undefined;
  /** conversations per followed image, most recent last */
  private readonly followed = new Map<string, Conversation>();

  constructor(private readonly ctx: Ctx) {
    super();
    this._register(vscode.window.tabGroups.onDidChangeTabs(() => this.followActiveImage()));
    this._register(vscode.window.tabGroups.onDidChangeTabGroups(() => this.followActiveImage()));
  }

  get chat(): ChatController | undefined {
    return this.controller;
  }

  async resolveWebviewView(view: vscode.WebviewView, context: vscode.WebviewViewResolveContext): Promise<void> {
    this.view = view;
    view.webview.options = webviewOptions(this.ctx.extensionUri);
    const state = context.state;
    const conversation = isPersistedState(state)
      ? new Conversation(state.conversation, await rereadImages(state.conversation.images))
      : new Conversation();
    const followActive = isPersistedState(state) ? state.followActive : true;
    this.controller?.dispose();
    const controller = new ChatController(view.webview, 'view', this.ctx, conversation, followActive);
    this.controller = controller;
    const uri = conversation.firstImageUri();
    if (uri) this.followed.set(uri, conversation);
    const subs = [
      controller.onDidChangeTitle((t) => (view.description = t === 'New chat' ? undefined : t)),
      controller.onDidChangeFollowActive((on) => on && this.followActiveImage()),
    ];
    view.description = conversation.title === 'New chat' ? undefined : conversation.title;
    view.webview.html = chatHtml(view.webview, this.ctx.extensionUri, 'view');
    view.onDidDispose(() => {
      subs.forEach((s) => s.dispose());
      controller.dispose();
      if (this.controller === controller) {
        this.controller = undefined;
        this.view = undefined;
      }
    });
    void this.followActiveImage();
  }

  /** Reveals the view with these images attached to the next question. */
  async showWith(images: readonly vscode.Uri[]): Promise<void> {
    await vscode.commands.executeCommand(`${ChatViewProvider.viewId}.focus`);
    if (this.controller && images.length) await this.controller.attach(images);
  }

  private async followActiveImage(): Promise<void> {
    const c = this.controller;
    if (!c || !c.followActive) return;
    const uri = activeImagePreview();
    if (!uri) return;
    const key = uri.toString();
    if (c.current.firstImageUri() === key) return;
    let conversation = this.followed.get(key);
    if (!conversation) {
      conversation = new Conversation();
      try {
        conversation.addImage(await readImage(uri));
      } catch (err) {
        this.ctx.log.warn(`chat view: cannot follow ${key}: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
    }
    // most recent last; forget the oldest beyond the cap
    this.followed.delete(key);
    this.followed.set(key, conversation);
    while (this.followed.size > MAX_FOLLOWED_CONVERSATIONS) this.followed.delete(this.followed.keys().next().value!);
    // the user may have switched again while the file was being read
    if (this.controller === c && activeImagePreview()?.toString() === key) c.replaceConversation(conversation);
  }

  override dispose(): void {
    this.controller?.dispose();
    super.dispose();
  }
}
