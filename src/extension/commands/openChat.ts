// `llava.openChat`: reveals the chat in the LLaVA side bar; from a context menu, attaches the image.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { ChatViewProvider } from '../panels/chatView';

export async function openChat(ctx: Ctx, view: ChatViewProvider, clicked?: unknown): Promise<void> {
  const images = clicked instanceof vscode.Uri ? [clicked] : [];
  try {
    await view.showWith(images);
  } catch (err) {
    ctx.log.warn(`open chat: ${err instanceof Error ? err.message : String(err)}`);
    void vscode.window.showErrorMessage(`LLaVA: ${err instanceof Error ? err.message : String(err)}`);
  }
}
