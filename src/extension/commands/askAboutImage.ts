// `llava.askAboutImage`: from the Explorer's context menu (one or several images), the image
// preview's title bar, or the command palette (the active image preview, else a file picker).
// Opens the chat panel beside the image; the question is typed there.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { ChatPanel } from '../panels/chatPanel';
import { activeImagePreview } from '../panels/chatView';
import { IMAGE_EXTENSIONS } from '../../protocol';

/** What VS Code passes: (clicked, allSelected) from the Explorer, (uri) from editor/title, nothing from the palette. */
export async function askAboutImage(ctx: Ctx, clicked?: unknown, selected?: unknown): Promise<ChatPanel | undefined> {
  let images: vscode.Uri[] = [];
  if (Array.isArray(selected) && selected.every((u) => u instanceof vscode.Uri) && selected.length) images = selected;
  else if (clicked instanceof vscode.Uri) images = [clicked];
  else {
    const active = activeImagePreview();
    if (active) images = [active];
    else {
      const picked = await vscode.window.showOpenDialog({
        canSelectMany: false,
        openLabel: 'Ask About Image',
        filters: { Images: [...IMAGE_EXTENSIONS] },
      });
      if (!picked?.length) return undefined;
      images = picked;
    }
  }
  ctx.log.info(`ask about image: ${images.map((u) => u.toString()).join(', ')}`);
  return ChatPanel.show(ctx, images);
}
