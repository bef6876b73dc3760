// The command table (rust-analyzer's pattern): one entry per contributed command, each a factory
// from the shared context to a handler. Registration and error reporting live here, once.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { ChatViewProvider } from '../panels/chatView';
import { askAboutImage } from './askAboutImage';
import { openChat } from './openChat';
import { showLogs } from './showLogs';
import { selectModel } from './selectModel';
import { downloadModelCommand } from './downloadModel';
import { manageModels } from './manageModels';
import { findInImage } from './findInImage';
import { registerTestHooks } from './testHooks';
import { captionImages } from './captionImages';
import { setRemoteApiKey } from './setRemoteApiKey';

type Handler = (...args: unknown[]) => unknown;
type CommandFactory = (ctx: Ctx, view: ChatViewProvider) => Handler;

export const commands: Record<string, CommandFactory> = {
  'llava.askAboutImage': (ctx) => (clicked, selected) => askAboutImage(ctx, clicked, selected),
  'llava.openChat': (ctx, view) => (clicked) => openChat(ctx, view, clicked),
  'llava.findInImage': (ctx) => (clicked, phrase) => findInImage(ctx, clicked, phrase),
  'llava.selectModel': (ctx) => () => selectModel(ctx.models),
  'llava.downloadModel': (ctx) => () => downloadModelCommand(ctx.models),
  'llava.manageModels': (ctx) => () => manageModels(ctx.models),
  'llava.showLogs': (ctx) => () => showLogs(ctx.log),
  'llava.captionImages': (ctx) => (clicked, selected) => captionImages(ctx, clicked, selected),
  'llava.setRemoteApiKey': (ctx) => () => setRemoteApiKey(ctx.context.secrets),
};

export function registerCommands(ctx: Ctx, view: ChatViewProvider): vscode.Disposable[] {
  return [...(__LLAVA_TEST_HOOKS__ ? registerTestHooks(ctx) : []), ...Object.entries(commands).map(([id, factory]) => {
    const handler = factory(ctx, view);
    return vscode.commands.registerCommand(id, async (...args: unknown[]) => {
      try {
        return await handler(...args);
      } catch (err) {
        // one place that turns a failed command into a message instead of a silent rejection
        const msg = err instanceof Error ? err.message : String(err);
        ctx.log.error(`${id}: ${err instanceof Error ? (err.stack ?? msg) : msg}`);
        void vscode.window.showErrorMessage(`LLaVA: ${msg}`);
        return undefined;
      }
    });
  })];
}
