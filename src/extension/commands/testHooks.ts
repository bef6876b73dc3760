// Test-only commands, compiled in only by test builds (`node esbuild.mjs --test-hooks`, which the e2e
// suite uses); scripts/package.mjs builds without them, removes their contributions from the
// manifest and fails if a bundle still names them. In a test build they also need the environment
// variable LLAVA_TEST_HOOKS=1 (the e2e harness sets it for code-server); the palette entry shows only
// when the context key `llava.testHooks` is true.
//
// `llava._test.injectAnswer`: shows a KNOWN answer (with boxes) about an image in a chat panel, as
// if the model had written it, so a browser test can check where the boxes are drawn (the tiny
// test model's own answers never contain boxes). Its argument, or the JSON typed into the input
// box when run from the palette:
//   { "image": "<absolute path or workspace-relative>", "question": "...", "answer": "...",
//     "geometry": ImageGeometry, "frame"?: BoxFrame }

import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { BoxFrame, ImageGeometry } from '../../core';
import { ChatPanel } from '../panels/chatPanel';

/** read when the hooks register (a top-level read would survive tree-shaking in users' builds) */
const testHooksEnabled = () => process.env.LLAVA_TEST_HOOKS === '1';

interface InjectRequest {
  image: string;
  question: string;
  answer: string;
  geometry: ImageGeometry;
  frame?: BoxFrame;
}

function isInjectRequest(v: unknown): v is InjectRequest {
  const o = v as Record<string, unknown> | null;
  return (
    typeof o === 'object' && o !== null &&
    typeof o.image === 'string' && typeof o.question === 'string' && typeof o.answer === 'string' &&
    typeof o.geometry === 'object' && o.geometry !== null
  );
}

export async function injectAnswer(ctx: Ctx, arg?: unknown): Promise<void> {
  let req: unknown = arg;
  if (req === undefined) {
    const text = await vscode.window.showInputBox({ title: 'LLaVA test: inject an answer (JSON)', ignoreFocusOut: true });
    if (!text) return;
    req = JSON.parse(text);
  }
  if (!isInjectRequest(req)) throw new Error('injectAnswer: expected {image, question, answer, geometry}');
  const folder = vscode.workspace.workspaceFolders?.[0]?.uri;
  const uri = path.isAbsolute(req.image) || !folder ? vscode.Uri.file(req.image) : vscode.Uri.joinPath(folder, req.image);
  const panel = await ChatPanel.show(ctx, [uri]);
  const imageId = panel.controller.defaultImageId();
  if (!imageId) throw new Error(`injectAnswer: ${uri.toString()} was not attached`);
  panel.controller.injectAnswer(req.question, req.answer, imageId, req.geometry, req.frame);
  ctx.log.info(`test: injected an answer about ${uri.toString()}`);
}

/** Registers the hooks; they do something only when enabled. */
export function registerTestHooks(ctx: Ctx): vscode.Disposable[] {
  if (testHooksEnabled()) void vscode.commands.executeCommand('setContext', 'llava.testHooks', true);
  return [
    vscode.commands.registerCommand('llava._test.injectAnswer', (arg?: unknown) => {
      if (!testHooksEnabled()) throw new Error('LLaVA test hooks are off (set LLAVA_TEST_HOOKS=1).');
      return injectAnswer(ctx, arg);
    }),
  ];
}
