// The API `activate()` returns, for the extension-host test suite: ask a question about an image
// through the same path the chat uses (model store -> engine process), and reach the engine process.

import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { readImage } from './images';

export interface LlavaApi {
  ask(image: vscode.Uri, question: string, onDelta?: (t: string) => void): Promise<{ text: string; provider: string }>;
  /** the @llava participant's handler, driven by the suite with its own request and response stream */
  chatHandler: vscode.ChatRequestHandler;
  /** reads an image as the chat does (`untrusted`: as a drop or a restored chat); its name and size */
  readImage(image: vscode.Uri, untrusted?: boolean): Promise<{ name: string; bytes: number }>;
  engine: {
    /** the engine process id, undefined when none runs */
    pid(): number | undefined;
    /** kill the engine process (crash-recovery tests) */
    kill(): void;
  };
}

export function askForTests(ctx: Ctx, chatHandler: vscode.ChatRequestHandler): LlavaApi {
  return {
    chatHandler,
    async ask(image, question, onDelta) {
      const img = await readImage(image);
      const r = await ctx.ask([{ role: 'user', text: question, images: [{ bytes: img.bytes, name: img.name }] }], { onDelta });
      return { text: r.text, provider: r.provider };
    },
    async readImage(image, untrusted) {
      const img = await readImage(image, { untrusted });
      return { name: img.name, bytes: img.bytes.byteLength };
    },
    engine: {
      pid: () => ctx.enginePid(),
      kill: () => ctx.killEngine(),
    },
  };
}
