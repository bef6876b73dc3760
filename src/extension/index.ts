// The VS Code host, and the only folder that imports vscode: activation, Ctx, commands, panels and
// the side view, status bar, typed config, model store. It talks to the engine only through the
// engine-process client (never the engine itself: the host must not load onnxruntime).
//
// This file is the entry point: build the Ctx, register the command table, the chat view and the
// panel serializer. Nothing else: the engine process starts on the first question, not at activation.

import * as vscode from 'vscode';
import { Ctx } from './ctx';
import { registerCommands } from './commands/index';
import { ChatPanel } from './panels/chatPanel';
import { ChatViewProvider } from './panels/chatView';
import { askForTests, type LlavaApi } from './api';
import { registerTools } from './tools/askAboutImageTool';
import { chatHandler, registerChatParticipant } from './chat/participant';
import { registerAltText } from './altText/altTextActions';

export type { LlavaApi };

/** Returns the test API only in test builds (`node esbuild.mjs --test-hooks`); users get undefined. */
export function activate(context: vscode.ExtensionContext): LlavaApi | undefined {
  const t0 = performance.now();
  const log = vscode.window.createOutputChannel('LLaVA', { log: true });
  const ctx = new Ctx(context, log);
  const view = new ChatViewProvider(ctx);
  context.subscriptions.push(
    ctx,
    view,
    vscode.window.registerWebviewViewProvider(ChatViewProvider.viewId, view),
    ChatPanel.registerSerializer(ctx),
    ...registerCommands(ctx, view),
    ...registerTools(ctx),
    ...registerChatParticipant(ctx),
    ...registerAltText(ctx),
    { dispose: () => ChatPanel.disposeAll() },
    // last: whatever is disposed before it may still log
    log,
  );
  log.info(`activated in ${(performance.now() - t0).toFixed(1)} ms (no model loaded until the first question)`);
  return __LLAVA_TEST_HOOKS__ ? askForTests(ctx, chatHandler(ctx)) : undefined;
}

export function deactivate(): void {
  // everything is in context.subscriptions; the engine process exits when its IPC channel closes
}
