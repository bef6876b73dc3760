// `llava.captionImages` ("Caption Images…"): from the Explorer (a folder, or several selected images) or the
// palette (pick files, a folder, or a glob over the workspace). Asks for a preset, a custom prompt, a "start
// caption with" prefix and the output kind, then runs the shared caption job (src/captioning/jobs.ts) in the
// extension host, one image at a time through the engine process (EngineClient.generate: the IPC has no
// batch request yet). The host only plans, writes files and reports; decoding and inference stay in the
// engine process, so the host never blocks. Cancellable progress; a summary with the report at the end.

import * as vscode from 'vscode';
import * as path from 'node:path';
import { existsSync, mkdirSync } from 'node:fs';
import type { Ctx } from '../ctx';
import { config, remoteConfig } from '../config';
import type { LoadParams } from '../../engine-process';
import { formatVariantChoice } from '../../core';
import {
  describeIgnored,
  scanImagePaths,
  IMAGE_EXTENSIONS,
  PRESET_PROMPTS,
  runCaptionJob,
  sidecarPath,
  type CaptionBackend,
  type CaptionOutput,
  type CaptionPreset,
  type CaptionResult,
  type CaptionSummary,
  type ExistingPolicy,
} from '../../captioning';

/** New tokens per preset: captions and tags are short; a detailed description may use the configured cap. */
function maxTokensFor(preset: CaptionPreset): number {
  const configured = config.maxNewTokens();
  return preset === 'short' ? Math.min(configured, 60) : preset === 'alt' || preset === 'tags' ? Math.min(configured, 120) : configured;
}

/** Captions through the extension's engine process, one image per request. */
function engineBackend(ctx: Ctx, params: LoadParams): CaptionBackend {
  return {
    model: path.basename(params.modelDir),
    variant: formatVariantChoice(params.variant),
    // The engine process decodes the file itself; a missing file is found here, the rest comes back typed.
    async prepare(imagePath, _signal, root) {
      return { path: imagePath, root };
    },
    async *captionBatch(items, s): AsyncIterable<CaptionResult> {
      for (let i = 0; i < items.length; i++) {
        if (s.signal?.aborted) return;
        const started = performance.now();
        try {
          const turns = [{ role: 'user' as const, text: items[i].prompt, images: [items[i].image] }];
          for await (const ev of ctx.client.generate(params, turns, {
            maxNewTokens: s.maxNewTokens, temperature: s.temperature || undefined, seed: s.seed, answerPrefix: items[i].prefix, signal: s.signal,
          })) {
            if (ev.type !== 'done') continue;
            if (ev.stats.stopReason === 'aborted') return;
            yield { index: i, text: ev.text, seconds: (performance.now() - started) / 1000 };
          }
        } catch (error) {
          yield { index: i, error: error as Error };
        }
      }
    },
  };
}

/** Explorer arguments (clicked, all selected) -> file-system paths, or undefined to ask. */
function fromExplorer(clicked: unknown, selected: unknown): string[] | undefined {
  const uris = Array.isArray(selected) && selected.length ? selected : clicked ? [clicked] : [];
  const paths = uris.filter((u): u is vscode.Uri => u instanceof vscode.Uri && u.scheme === 'file').map((u) => u.fsPath);
  return paths.length ? paths : undefined;
}

async function pickTargets(): Promise<string[] | undefined> {
  const choice = await vscode.window.showQuickPick(
    [
      { label: '$(folder) A folder…', id: 'folder', detail: 'every image in it and its subfolders' },
      { label: '$(files) Images…', id: 'files' },
      { label: '$(search) A glob in the workspace…', id: 'glob', detail: 'e.g. data/**/*.png' },
    ],
    { title: 'Caption Images: what to caption' },
  );
  if (!choice) return undefined;
  if (choice.id === 'glob') {
    const exts = IMAGE_EXTENSIONS.map((e) => e.slice(1)).join(',');
    const glob = await vscode.window.showInputBox({ title: 'Caption Images: glob', value: `**/*.{${exts}}`, prompt: 'Relative to the workspace folders' });
    if (!glob) return undefined;
    const found = await vscode.workspace.findFiles(glob, '**/node_modules/**');
    return found.filter((u) => u.scheme === 'file').map((u) => u.fsPath);
  }
  const picked = await vscode.window.showOpenDialog({
    canSelectFiles: choice.id === 'files',
    canSelectFolders: choice.id === 'folder',
    canSelectMany: true,
    openLabel: 'Caption',
    filters: choice.id === 'files' ? { Images: IMAGE_EXTENSIONS.map((e) => e.slice(1)) } : undefined,
  });
  return picked?.map((u) => u.fsPath);
}

function formatEta(seconds: number | undefined): string {
  if (seconds === undefined) return '…';
  const s = Math.round(seconds);
  return s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

export async function captionImages(ctx: Ctx, clicked?: unknown, selected?: unknown): Promise<void> {
  const targets = fromExplorer(clicked, selected) ?? (await pickTargets());
  if (!targets?.length) return;
  // explicit files may follow links only within their workspace folder (the host's cwd means nothing)
  const workspaceRoot = vscode.workspace.getWorkspaceFolder(vscode.Uri.file(targets[0]))?.uri.fsPath ?? path.dirname(targets[0]);
  const scan = await scanImagePaths(targets, workspaceRoot);
  const images = scan.images;
  if (!images.length) {
    void vscode.window.showWarningMessage('LLaVA: no images found there.');
    return;
  }

  const presets: { label: string; id: CaptionPreset; detail?: string }[] = [
    { label: 'Short caption', id: 'short', detail: PRESET_PROMPTS.short },
    { label: 'Detailed description', id: 'detailed', detail: PRESET_PROMPTS.detailed },
    { label: 'Alt text', id: 'alt', detail: PRESET_PROMPTS.alt },
    { label: 'Tags (comma-separated)', id: 'tags', detail: PRESET_PROMPTS.tags },
    { label: 'Custom prompt…', id: 'custom', detail: 'placeholders: {name}, {folder}, {existing}' },
  ];
  const preset = await vscode.window.showQuickPick(presets, { title: `Caption ${images.length} image(s): preset` });
  if (!preset) return;
  let prompt: string | undefined;
  if (preset.id === 'custom') {
    prompt = await vscode.window.showInputBox({
      title: 'Caption Images: prompt',
      prompt: '{name} = file name, {folder} = folder name, {existing} = the current caption',
      validateInput: (v) => (v.trim() ? undefined : 'Type a prompt'),
    });
    if (!prompt) return;
  }
  const prefix = await vscode.window.showInputBox({ title: 'Caption Images: start every caption with (optional)', placeHolder: 'e.g. "a photo of"' });
  if (prefix === undefined) return;
  const outputs: { label: string; id: CaptionOutput; detail: string }[] = [
    { label: 'Sidecar text files', id: 'sidecar', detail: 'photo.png -> photo.txt next to each image' },
    { label: 'JSONL manifest', id: 'jsonl', detail: 'one JSON record per image in captions.jsonl' },
    { label: 'CSV manifest', id: 'csv', detail: 'one row per image in captions.csv' },
  ];
  const output = await vscode.window.showQuickPick(outputs, { title: 'Caption Images: output' });
  if (!output) return;

  const common = commonFolder(images);
  let existing: ExistingPolicy = 'skip';
  const manifest =
    output.id === 'sidecar'
      ? reportPath(ctx)
      : path.join(common, `captions.${output.id}`);
  const captioned = output.id === 'sidecar' ? images.filter((p) => existsSync(sidecarPath(p))).length : existsSync(manifest) ? 1 : 0;
  if (captioned) {
    const pick = await vscode.window.showQuickPick(
      [
        { label: 'Skip them', id: 'skip' as const, detail: 'caption only what is missing (resumes an interrupted run)' },
        { label: 'Overwrite them', id: 'overwrite' as const },
        { label: 'Append to them', id: 'append' as const },
      ],
      { title: output.id === 'sidecar' ? `${captioned} image(s) already have a caption` : `${path.basename(manifest)} exists: images already in it` },
    );
    if (!pick) return;
    existing = pick.id;
  }

  // the remote backend sends `llava.remote.concurrency` images at once; the engine process takes one at a time
  const remote = ctx.remote.enabled ? await ctx.remote.captionBackend() : undefined;
  const backend = remote ?? engineBackend(ctx, await ctx.loadParams());
  // the first image captioned in this run: its caption is what "Open First Caption" shows
  let firstCaptioned: string | undefined;
  const summary = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: 'LLaVA: captioning', cancellable: true },
    async (progress, token) => {
      const controller = new AbortController();
      token.onCancellationRequested(() => controller.abort());
      let reported = 0;
      return runCaptionJob(backend, {
        images, roots: scan.roots, refused: scan.refused, skippedFiles: scan.skipped, preset: preset.id, prompt, prefix: prefix || undefined, output: output.id, manifest, existing,
        batchSize: remote ? remoteConfig.concurrency() : 1, maxNewTokens: maxTokensFor(preset.id), temperature: config.temperature(), signal: controller.signal,
        onProgress: (p) => {
          const fraction = p.total ? p.done / p.total : 1;
          const current = p.current[0] ? ` · ${path.basename(p.current[0])}` : '';
          progress.report({
            increment: (fraction - reported) * 100,
            message: `${p.done}/${p.total} · ${p.imagesPerMinute.toFixed(1)} img/min · ETA ${formatEta(p.etaSeconds)}${current}`,
          });
          reported = fraction;
        },
        onImage: (r) => {
          if (!r.ok) ctx.log.warn(`caption: ${r.path}: ${r.code}: ${r.error}`);
          else firstCaptioned ??= r.path;
        },
      });
    },
  );

  ctx.log.info(`caption: ${summary.captioned} captioned, ${summary.skipped} skipped, ${summary.failed.length} failed in ${summary.seconds.toFixed(1)} s; ${summary.manifest ?? ''}`);
  await reportCaptions(ctx, summary, output.id, images.length, firstCaptioned);
}

/**
 * The end of a run, in words: how many, where the captions went (next to each image, or one
 * manifest), with Reveal in Explorer / Open First Caption; a run that had nothing to do says so.
 */
async function reportCaptions(
  ctx: Ctx,
  summary: Pick<CaptionSummary, 'captioned' | 'skipped' | 'failed' | 'cancelled' | 'imagesPerMinute' | 'manifest' | 'ignored'>,
  output: CaptionOutput,
  total: number,
  first: string | undefined,
): Promise<void> {
  const failed = summary.failed.length;
  const where =
    output === 'sidecar'
      ? first
        ? ` Captions are in .txt files next to the images (e.g. ${path.basename(sidecarPath(first))}).`
        : ''
      : summary.manifest
        ? ` Captions are in ${path.basename(summary.manifest)} (${path.dirname(summary.manifest)}).`
        : '';
  let text: string;
  if (!summary.cancelled && summary.captioned === 0 && failed === 0 && summary.skipped > 0) {
    text = `LLaVA: nothing to do: all ${summary.skipped} image(s) already have captions, so they were skipped. Run again and choose "Overwrite them" to caption them anew.`;
  } else {
    text =
      `LLaVA: ${summary.cancelled ? 'cancelled after captioning' : 'captioned'} ${summary.captioned} of ${total} image(s)` +
      `${summary.skipped ? `, ${summary.skipped} already had captions` : ''}` +
      `${failed ? `, ${failed} failed` : ''}.` +
      where;
  }
  // what the folder walk did not take (not images, links leaving the folder, ...) is counted, not hidden
  if (Object.keys(summary.ignored).length) text += ` Not taken from the folders: ${describeIgnored(summary.ignored)}.`;
  const target = output === 'sidecar' ? (first ? sidecarPath(first) : undefined) : summary.manifest;
  const REVEAL = 'Reveal in Explorer';
  const OPEN = output === 'sidecar' ? 'Open First Caption' : 'Open Captions';
  const FAILURES = 'Show Failures';
  const actions = [target ? OPEN : undefined, target ? REVEAL : undefined, failed ? FAILURES : undefined].filter((a): a is string => !!a);
  const show = failed ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
  const action = await show(text, ...actions);
  if (action === OPEN && target) {
    await vscode.window.showTextDocument(vscode.Uri.file(target));
  } else if (action === REVEAL && target) {
    await vscode.commands.executeCommand('revealInExplorer', vscode.Uri.file(target));
  } else if (action === FAILURES) {
    const doc = await vscode.workspace.openTextDocument({
      language: 'markdown',
      content: `# Images that could not be captioned\n\n${summary.failed.map((f) => `- \`${f.path}\`: ${f.code}: ${f.error}`).join('\n')}\n`,
    });
    await vscode.window.showTextDocument(doc);
  }
}

/** The deepest folder holding every image (where JSONL/CSV manifests go). */
function commonFolder(images: string[]): string {
  let dir = path.dirname(images[0]);
  for (const p of images) while (path.relative(dir, p).startsWith('..')) dir = path.dirname(dir);
  return dir;
}

/** A per-run report for sidecar jobs, kept out of the user's folders. */
function reportPath(ctx: Ctx): string {
  const dir = path.join(ctx.context.globalStorageUri.fsPath, 'caption-reports');
  mkdirSync(dir, { recursive: true });
  return path.join(dir, `captions-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
}
