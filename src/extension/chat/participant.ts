// `@llava` in the Chat view (contributes.chatParticipants): answers about the images a request names
// (#file: references, attached images, or workspace paths typed in the prompt), streamed as Markdown;
// `/find PHRASE` lists boxes in image pixels; `/caption` captions the named images here, or a folder or
// glob through the caption job. Each answer offers the image in the LLaVA panel (boxes drawn there).
// Images are read only inside the workspace (attachments the user dropped in are theirs to send).

import * as vscode from 'vscode';
import * as path from 'node:path';
import type { ImageInput } from '../../core';
import { PRESET_PROMPTS } from '../../captioning';
import { mimeForName } from '../../protocol';
import type { Ctx } from '../ctx';
import { readImage } from '../images';
import { askAboutWorkspaceImage } from '../tools/askAboutImageTool';
import { displayName, resolveWorkspaceImage, WorkspaceImageError } from '../tools/workspaceImage';
import { SafeMarkdown } from './safeMarkdown';

export const PARTICIPANT_ID = 'llava.chat';

interface NamedImages {
  /** workspace images, in the order the request names them */
  uris: vscode.Uri[];
  /** attached image data that is not a workspace file */
  attached: { bytes: Uint8Array; name: string }[];
  /** the prompt with references and image paths taken out */
  text: string;
  /** a folder or glob named for /caption */
  target?: string;
  refused: string[];
}

const PATH_IN_PROMPT = /(?:^|\s)(["'`]?)([^\s"'`]+\.(?:png|jpe?g|webp|gif|bmp|tiff?|avif|svg))\1(?=\s|$|[,.;:!?])/gi;

async function namedImages(request: vscode.ChatRequest): Promise<NamedImages> {
  const out: NamedImages = { uris: [], attached: [], text: request.prompt, refused: [] };
  const cut: [number, number][] = [];
  for (const ref of request.references) {
    const v = ref.value as unknown;
    const uri = v instanceof vscode.Uri ? v : v instanceof vscode.Location ? v.uri : undefined;
    if (uri && mimeForName(path.posix.basename(uri.path))) {
      try {
        out.uris.push(await resolveWorkspaceImage(uri));
      } catch (err) {
        out.refused.push((err as Error).message);
      }
      if (ref.range) cut.push(ref.range);
    } else if (uri && ref.range) {
      out.target = uri.toString();
      cut.push(ref.range);
    } else if (v && typeof (v as { data?: unknown }).data === 'function' && /^image\//.test(String((v as { mimeType?: unknown }).mimeType))) {
      // an image attached to the request (pasted or dropped): bytes, not a file
      out.attached.push({ bytes: await (v as { data(): Thenable<Uint8Array> }).data(), name: ref.id || 'attached image' });
    }
  }
  let text = request.prompt;
  for (const [s, e] of cut.sort((a, b) => b[0] - a[0])) text = text.slice(0, s) + text.slice(e);
  for (const m of [...text.matchAll(PATH_IN_PROMPT)]) {
    try {
      out.uris.push(await resolveWorkspaceImage(m[2]));
      text = text.replace(m[0], ' ');
    } catch (err) {
      if (err instanceof WorkspaceImageError) out.refused.push(err.message);
    }
  }
  out.text = text.replace(/\s+/g, ' ').trim();
  return out;
}

export function chatHandler(ctx: Ctx): vscode.ChatRequestHandler {
  return async (request, _context, stream, token) => {
    const controller = new AbortController();
    const sub = token.onCancellationRequested(() => controller.abort());
    try {
      const named = await namedImages(request);
      for (const r of named.refused) stream.markdown(`> ${SafeMarkdown.escape(r)}\n\n`);
      if (request.command === 'caption' && !named.uris.length && !named.attached.length) return captionJob(ctx, named, stream);
      if (!named.uris.length && !named.attached.length) {
        stream.markdown('Name an image: `#file:` a workspace image, attach one, or type its path (e.g. `media/diagram.png What is this?`).');
        return { metadata: { images: [] } };
      }
      if (request.command === 'find') {
        if (!named.text) {
          stream.markdown('Say what to find: `/find the red car #file:photo.jpg`.');
          return { metadata: { images: [] } };
        }
        for (const uri of named.uris) {
          stream.progress(`Looking for "${named.text}" in ${displayName(uri)}…`);
          const a = await askAboutWorkspaceImage(ctx, { image: uri.toString(), find: named.text }, controller.signal);
          const list = a.boxes?.length
            ? a.boxes.map((b) => `- ${SafeMarkdown.escape(b.phrase)}: x ${b.x}, y ${b.y}, ${b.width} × ${b.height} px`).join('\n')
            : `- not found (the model answered: ${SafeMarkdown.escape(a.text.slice(0, 200))})`;
          stream.markdown(`**${SafeMarkdown.escape(a.image)}**\n\n${list}\n\n`);
          stream.button({ command: 'llava.findInImage', arguments: [uri, named.text], title: 'Open in LLaVA panel' });
        }
        return { metadata: { images: named.uris.map((u) => u.toString()), find: named.text } };
      }
      const question = request.command === 'caption' ? PRESET_PROMPTS.short : named.text || 'What is in this image?';
      const images: ImageInput[] = [];
      for (const uri of named.uris) {
        const img = await readImage(uri);
        images.push({ bytes: img.bytes, name: img.name });
      }
      images.push(...named.attached);
      if (request.command === 'caption') {
        // one caption per image, each on its own line
        for (let i = 0; i < images.length; i++) {
          const label = i < named.uris.length ? displayName(named.uris[i]) : (images[i] as { name: string }).name;
          const r = await ctx.ask([{ role: 'user', text: question, images: [images[i]] }], { signal: controller.signal });
          stream.markdown(`- **${SafeMarkdown.escape(label)}**: ${SafeMarkdown.escape(r.text.trim())}\n`);
        }
      } else {
        const md = new SafeMarkdown((t) => stream.markdown(t));
        await ctx.ask([{ role: 'user', text: question, images }], { signal: controller.signal, onDelta: (t) => md.push(t) });
        md.end();
      }
      for (const uri of named.uris) stream.button({ command: 'llava.askAboutImage', arguments: [uri], title: `Open ${displayName(uri)} in LLaVA panel` });
      return { metadata: { images: named.uris.map((u) => u.toString()) } };
    } catch (err) {
      if (controller.signal.aborted) return { metadata: { cancelled: true } };
      const message = err instanceof Error ? err.message : String(err);
      ctx.log.warn(`@llava: ${message}`);
      return { errorDetails: { message } };
    } finally {
      sub.dispose();
    }
  };
}

/** `/caption folder` or `/caption glob`: the caption job (it asks for the preset and the output). */
async function captionJob(ctx: Ctx, named: NamedImages, stream: vscode.ChatResponseStream): Promise<vscode.ChatResult> {
  const target = named.target ?? named.text;
  if (!target) {
    stream.markdown('Name a folder or a glob: `/caption #file:photos` or `/caption data/**/*.png`.');
    return { metadata: { images: [] } };
  }
  let uris: vscode.Uri[];
  const asUri = /^[a-z][a-z0-9+.-]+:/i.test(target) ? vscode.Uri.parse(target) : undefined;
  if (asUri) uris = [asUri];
  else {
    const found = await vscode.workspace.findFiles(target.includes('*') ? target : `${target.replace(/\/+$/, '')}/**/*.{png,jpg,jpeg,webp,gif,tif,tiff,avif}`, '**/node_modules/**', 100_000);
    uris = found.sort((a, b) => a.fsPath.localeCompare(b.fsPath));
  }
  if (!uris.length) {
    stream.markdown(`No images match \`${SafeMarkdown.escape(target)}\` in the workspace.`);
    return { metadata: { images: [] } };
  }
  stream.progress(`Captioning ${asUri ? displayName(asUri) : `${uris.length} image(s)`}: choose the preset and output in the prompts above…`);
  await vscode.commands.executeCommand('llava.captionImages', uris[0], uris);
  stream.markdown('The caption job finished; its summary is in the notification (and **LLaVA: Show Logs**).');
  ctx.log.info(`@llava /caption: ${uris.length} target(s)`);
  return { metadata: { images: uris.map((u) => u.toString()) } };
}

export function registerChatParticipant(ctx: Ctx): vscode.Disposable[] {
  if (typeof vscode.chat?.createChatParticipant !== 'function') return [];
  const participant = vscode.chat.createChatParticipant(PARTICIPANT_ID, chatHandler(ctx));
  participant.iconPath = vscode.Uri.joinPath(ctx.extensionUri, 'media', 'llava.svg');
  return [participant];
}
