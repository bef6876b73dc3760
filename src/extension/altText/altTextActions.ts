// "Generate alt text with LLaVA": a code action on an image reference whose alt text is missing (Markdown
// `![](x.png)` or a file-name alt; HTML/JSX `<img src>` without alt), and "LLaVA: Fill Missing Alt Text"
// for every such reference in the current file under one cancellable progress notification. The text
// comes from the `alt` caption preset; all edits of a run are one WorkspaceEdit, so one undo restores
// the file. Only images inside the workspace are read; a remote or data: URL is skipped, said once.

import * as vscode from 'vscode';
import { PRESET_PROMPTS } from '../../captioning';
import type { Ctx } from '../ctx';
import { readImage } from '../images';
import { resolveWorkspaceImage } from '../tools/workspaceImage';
import { ALT_LANGUAGES, altEdit, findMissingAlt, type MissingAlt } from './missingAlt';

export const GENERATE_ALT = 'llava.generateAltText';
export const FILL_ALT = 'llava.fillMissingAltText';

/** The n-th missing alt with this src: how a reference is found again after the document changed. */
function keyed(items: MissingAlt[]): Map<string, MissingAlt> {
  const seen = new Map<string, number>();
  const out = new Map<string, MissingAlt>();
  for (const it of items) {
    const n = seen.get(it.src) ?? 0;
    seen.set(it.src, n + 1);
    out.set(`${it.src}#${n}`, it);
  }
  return out;
}

async function imageUriFor(doc: vscode.TextDocument, src: string): Promise<vscode.Uri> {
  if (/^(?:[a-z][a-z0-9+.-]*:|\/\/)/i.test(src)) throw new Error(`${src} is not a workspace file`);
  const clean = decodeURI(src.split(/[?#]/)[0]);
  const folder = vscode.workspace.getWorkspaceFolder(doc.uri);
  const uri = clean.startsWith('/') && folder ? vscode.Uri.joinPath(folder.uri, clean) : vscode.Uri.joinPath(doc.uri, '..', clean);
  return resolveWorkspaceImage(uri);
}

class AltTextActions implements vscode.CodeActionProvider {
  static readonly kind = vscode.CodeActionKind.QuickFix.append('llava.altText');

  provideCodeActions(doc: vscode.TextDocument, range: vscode.Range | vscode.Selection): vscode.CodeAction[] {
    const all = findMissingAlt(doc.getText(), doc.languageId);
    if (!all.length) return [];
    const at = doc.offsetAt(range.start);
    const end = doc.offsetAt(range.end);
    const out: vscode.CodeAction[] = [];
    for (const it of all.filter((i) => i.refStart <= end && at <= i.refEnd)) {
      const action = new vscode.CodeAction('Generate alt text with LLaVA', AltTextActions.kind);
      action.command = { command: GENERATE_ALT, title: 'Generate alt text with LLaVA', arguments: [doc.uri, it.refStart] };
      out.push(action);
    }
    if (out.length && all.length > 1) {
      const fill = new vscode.CodeAction(`Fill all ${all.length} missing alt texts in this file with LLaVA`, AltTextActions.kind);
      fill.command = { command: FILL_ALT, title: 'Fill missing alt text', arguments: [doc.uri] };
      out.push(fill);
    }
    return out;
  }
}

/** Captions the chosen references and applies them as one edit. Resolves to the number of alts written. */
export async function fillAltText(ctx: Ctx, uri: vscode.Uri, only?: number): Promise<number> {
  const doc = await vscode.workspace.openTextDocument(uri);
  const wanted = [...keyed(findMissingAlt(doc.getText(), doc.languageId))].filter(([, it]) => only === undefined || it.refStart === only);
  if (!wanted.length) {
    void vscode.window.showInformationMessage('LLaVA: no image without alt text here.');
    return 0;
  }
  const captions = new Map<string, string>();
  const skipped: string[] = [];
  await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'LLaVA: alt text', cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      const sub = token.onCancellationRequested(() => controller.abort());
      try {
        for (const [i, [key, it]] of wanted.entries()) {
          if (token.isCancellationRequested) break;
          progress.report({ message: `${i + 1}/${wanted.length} · ${it.src}`, increment: 100 / wanted.length });
          let image;
          try {
            image = await readImage(await imageUriFor(doc, it.src));
          } catch (err) {
            skipped.push(`${it.src}: ${(err as Error).message}`);
            continue;
          }
          const r = await ctx.ask([{ role: 'user', text: PRESET_PROMPTS.alt, images: [{ bytes: image.bytes, name: image.name }] }], { signal: controller.signal });
          if (r.text.trim()) captions.set(key, r.text);
        }
      } finally {
        sub.dispose();
      }
    },
  );
  // the document may have changed while the model worked: find each reference again by its key
  const now = keyed(findMissingAlt(doc.getText(), doc.languageId));
  const edit = new vscode.WorkspaceEdit();
  let written = 0;
  for (const [key, caption] of captions) {
    const it = now.get(key);
    if (!it) continue;
    edit.replace(uri, new vscode.Range(doc.positionAt(it.start), doc.positionAt(it.end)), altEdit(it.kind, caption, doc.languageId));
    written++;
  }
  if (written) await vscode.workspace.applyEdit(edit);
  for (const s of skipped) ctx.log.warn(`alt text: skipped ${s}`);
  if (skipped.length) void vscode.window.showWarningMessage(`LLaVA: wrote ${written} alt text(s); skipped ${skipped.length}: ${skipped[0]}${skipped.length > 1 ? ' …' : ''}`);
  ctx.log.info(`alt text: ${written} written in ${vscode.workspace.asRelativePath(uri)}`);
  return written;
}

export function registerAltText(ctx: Ctx): vscode.Disposable[] {
  const run = (fn: () => Promise<number>) => async () => {
    try {
      return await fn();
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.log.error(`alt text: ${message}`);
      void vscode.window.showErrorMessage(`LLaVA: ${message}`);
      return 0;
    }
  };
  const activeUri = () => {
    const uri = vscode.window.activeTextEditor?.document.uri;
    if (!uri) throw new Error('Open a Markdown or HTML file first.');
    return uri;
  };
  return [
    vscode.languages.registerCodeActionsProvider(ALT_LANGUAGES.map((language) => ({ language })), new AltTextActions(), { providedCodeActionKinds: [AltTextActions.kind] }),
    vscode.commands.registerCommand(GENERATE_ALT, (uri?: vscode.Uri, refStart?: number) => run(() => fillAltText(ctx, uri ?? activeUri(), refStart))()),
    vscode.commands.registerCommand(FILL_ALT, (uri?: vscode.Uri) => run(() => fillAltText(ctx, uri instanceof vscode.Uri ? uri : activeUri()))()),
  ];
}
