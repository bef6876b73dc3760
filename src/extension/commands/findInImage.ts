// `llava.findInImage` ("Find in Image…"): asks for a phrase and has the model box it, with the
// model's own referring-expression prompt; the box is drawn over the image in the chat.
// Which chat: from the Explorer or an image preview's title, that image's panel (opened beside it);
// from the palette, the active image preview's panel, else the most recently used chat panel.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { ChatPanel } from '../panels/chatPanel';
import { activeImagePreview } from '../panels/chatView';
import { askAboutImage } from './askAboutImage';

export async function findInImage(ctx: Ctx, clicked?: unknown, phraseArg?: unknown): Promise<void> {
  let panel: ChatPanel | undefined;
  if (clicked instanceof vscode.Uri || activeImagePreview()) panel = await askAboutImage(ctx, clicked);
  else panel = ChatPanel.active ?? (await askAboutImage(ctx));
  if (!panel) return;
  const chat = panel.controller;
  if (!chat.defaultImageId()) throw new Error('This chat has no image to search.');
  const phrase =
    typeof phraseArg === 'string' && phraseArg.trim()
      ? phraseArg
      : await vscode.window.showInputBox({
          title: 'Find in Image',
          prompt: 'Describe what to find; the model answers with a box drawn over the image.',
          placeHolder: 'e.g. the Save button',
          ignoreFocusOut: true,
        });
  if (!phrase?.trim()) return;
  await chat.find(phrase.trim());
}
