// `llava_askAboutImage`, a language model tool (contributes.languageModelTools): any agent in VS Code
// (Copilot agent mode, other chat extensions) can ask the configured LLaVA model about a workspace
// image, or find a phrase in it. The confirmation names the image before anything is read; images
// outside the workspace folders are refused. The result is the answer text, plus (for `find`) the boxes
// in the image's own pixels as JSON, so the calling model can reason about positions.

import * as vscode from 'vscode';
import { answerBoxes, findQuestion, groundingForCurrentModel } from '../../grounding';
import type { Ctx } from '../ctx';
import { readImage } from '../images';
import { displayName, resolveWorkspaceImage } from './workspaceImage';

export const ASK_TOOL_NAME = 'llava_askAboutImage';

export interface AskAboutImageInput {
  /** a workspace-relative path, an absolute path inside the workspace, or a URI */
  image: string;
  question?: string;
  /** a phrase to locate: the result carries its boxes */
  find?: string;
}

export interface ToolAnswer {
  text: string;
  /** set for `find`: boxes in the original image's pixels */
  boxes?: { phrase: string; x: number; y: number; width: number; height: number }[];
  image: string;
}

function checkInput(input: unknown): AskAboutImageInput {
  const i = (input ?? {}) as Record<string, unknown>;
  if (typeof i.image !== 'string' || !i.image.trim()) throw new Error('`image` is required: a workspace-relative path or URI of an image.');
  const question = typeof i.question === 'string' ? i.question.trim() : '';
  const find = typeof i.find === 'string' ? i.find.trim() : '';
  if (!question && !find) throw new Error('Give a `question` about the image, or a `find` phrase to locate in it.');
  return { image: i.image, question: question || undefined, find: find || undefined };
}

/** The tool's work, shared with the @llava participant: resolve, read, ask, map boxes. */
export async function askAboutWorkspaceImage(ctx: Ctx, input: AskAboutImageInput, signal?: AbortSignal, onDelta?: (t: string) => void): Promise<ToolAnswer> {
  const uri = await resolveWorkspaceImage(input.image);
  const img = await readImage(uri);
  const spec = input.find ? await groundingForCurrentModel(ctx.groundingSource) : undefined;
  const text = spec ? findQuestion(spec, input.find!) : input.question!;
  const r = await ctx.ask([{ role: 'user', text, images: [{ bytes: img.bytes, name: img.name }] }], { signal, onDelta });
  const geometry = r.images?.[0];
  const boxes = spec && geometry ? answerBoxes(r.text, spec.frame, geometry).map(({ phrase, x, y, width, height }) => ({ phrase: phrase || input.find!, x: round(x), y: round(y), width: round(width), height: round(height) })) : undefined;
  return { text: r.text, boxes, image: displayName(uri) };
}

const round = (v: number) => Math.round(v * 10) / 10;

export class AskAboutImageTool implements vscode.LanguageModelTool<AskAboutImageInput> {
  constructor(private readonly ctx: Ctx) {}

  async prepareInvocation(options: vscode.LanguageModelToolInvocationPrepareOptions<AskAboutImageInput>): Promise<vscode.PreparedToolInvocation> {
    const input = checkInput(options.input);
    const uri = await resolveWorkspaceImage(input.image);
    const name = displayName(uri);
    const where = this.ctx.remote.enabled ? 'the remote LLaVA server in your settings' : 'the local LLaVA model';
    const message = new vscode.MarkdownString();
    message.appendText(`Send ${name} to ${where} `);
    message.appendText(input.find ? `to find "${input.find}"?` : `with the question "${input.question}"?`);
    return {
      invocationMessage: `Asking LLaVA about ${name}`,
      confirmationMessages: { title: `Look at ${name} with LLaVA?`, message },
    };
  }

  async invoke(options: vscode.LanguageModelToolInvocationOptions<AskAboutImageInput>, token: vscode.CancellationToken): Promise<vscode.LanguageModelToolResult> {
    const input = checkInput(options.input);
    const controller = new AbortController();
    const sub = token.onCancellationRequested(() => controller.abort());
    try {
      const a = await askAboutWorkspaceImage(this.ctx, input, controller.signal);
      this.ctx.log.info(`tool ${ASK_TOOL_NAME}: answered about ${a.image}${a.boxes ? ` (${a.boxes.length} boxes)` : ''}`);
      const parts = [new vscode.LanguageModelTextPart(a.text)];
      if (input.find) parts.push(new vscode.LanguageModelTextPart(JSON.stringify({ image: a.image, find: input.find, boxes: a.boxes ?? [], units: 'pixels of the original image: x, y from the top-left; width, height' })));
      return new vscode.LanguageModelToolResult(parts);
    } finally {
      sub.dispose();
    }
  }
}

export function registerTools(ctx: Ctx): vscode.Disposable[] {
  // vscode.lm exists from VS Code 1.95 (the engine minimum); guard anyway for hosts that stub it
  if (typeof vscode.lm?.registerTool !== 'function') return [];
  return [vscode.lm.registerTool(ASK_TOOL_NAME, new AskAboutImageTool(ctx))];
}
