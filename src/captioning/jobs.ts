// The caption job runner shared by the CLI (`llava caption`), the VS Code command and the benchmark.
// vscode-free: the model comes in as a CaptionBackend (in-process LlavaModel, or the extension's engine
// process), progress goes out through a callback, cancellation comes in as an AbortSignal.
//
//   paths -> plan (what is already captioned: skip / overwrite / append)
//         -> prefetch: backend.prepare(image) for the next images, a bounded queue ahead of inference
//         -> batches of N -> backend.captionBatch -> each caption written as it arrives
//            (sidecar: atomic temp + rename; manifest: one fsync'd record)
// A killed run leaves every output complete or absent; rerunning the same job does only what is missing.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { EngineError, FileRefusedError, oneLine, type FileRefusal } from '../core';
import { checkRegularFile, isInside } from '../files';
import { Manifest, readSidecar, removeStaleTempFiles, sidecarPath, writeFileAtomic, type CaptionRecord, type ManifestFormat } from './outputs';
import { CaptionQueue } from './queue';
import type { ImageInput } from '../core';

export { Manifest, sidecarPath, type CaptionRecord } from './outputs';

export type CaptionPreset = 'short' | 'detailed' | 'alt' | 'tags' | 'custom';
export type CaptionOutput = 'sidecar' | 'jsonl' | 'csv';
/** what to do with an image that already has a caption (a sidecar, or a successful manifest record) */
export type ExistingPolicy = 'skip' | 'overwrite' | 'append';

/** Preset questions. Placeholders ({name}, {folder}, {existing}) work in these and in custom prompts. */
export const PRESET_PROMPTS: Readonly<Record<Exclude<CaptionPreset, 'custom'>, string>> = {
  short: 'Write a short, one-sentence caption for this image.',
  detailed: 'Describe this image in detail: the subject, the setting, colours, composition and any visible text.',
  alt: 'Write alt text for this image for someone who cannot see it: what it shows and any important text, in one or two sentences.',
  tags: 'List tags for this image as a single comma-separated line: subjects, objects, style, colours, setting.',
};

export const IMAGE_EXTENSIONS: readonly string[] = ['.png', '.jpg', '.jpeg', '.jpe', '.webp', '.gif', '.tif', '.tiff', '.avif'];

export interface CaptionItem {
  path: string;
  image: ImageInput;
  prompt: string;
  prefix?: string;
}

export interface CaptionSampling {
  maxNewTokens: number;
  /** 0 = greedy */
  temperature: number;
  seed?: number;
  signal?: AbortSignal;
}

export type CaptionResult = { index: number; text: string; seconds: number } | { index: number; error: Error };

/** The model side of a job. */
export interface CaptionBackend {
  /** recorded in manifests */
  readonly model: string;
  readonly variant: string;
  /**
   * decode/preprocess one image ahead of inference; `root`: the folder its real path must stay inside.
   * Throws ImageDecodeError / ImageTooLargeError / FileRefusedError.
   */
  prepare(imagePath: string, signal?: AbortSignal, root?: string): Promise<ImageInput>;
  /** captions `items` (up to the job's batch size); one result per index, in any order */
  captionBatch(items: CaptionItem[], opts: CaptionSampling): AsyncIterable<CaptionResult>;
}

export interface CaptionJobOptions {
  images: string[];
  /** image -> the folder it must stay inside (scanImagePaths); default: the image's own folder */
  roots?: ReadonlyMap<string, string>;
  /** explicit files that could not be read (scanImagePaths): each is recorded as failed */
  refused?: readonly { path: string; code: string; error: string }[];
  /** files the folder walk did not take (scanImagePaths): counted by reason in the summary */
  skippedFiles?: readonly SkippedFile[];
  preset?: CaptionPreset;
  /** the custom prompt (preset 'custom'); placeholders allowed */
  prompt?: string;
  /** forced start of every caption ("start caption with") */
  prefix?: string;
  output?: CaptionOutput;
  /** manifest file: required for jsonl/csv unless defaultManifest applies; optional report for sidecar */
  manifest?: string;
  /** sidecar extension, default '.txt' */
  ext?: string;
  existing?: ExistingPolicy;
  batchSize?: number;
  /** images prepared ahead of inference (default 2 x batch) */
  prefetch?: number;
  maxNewTokens?: number;
  temperature?: number;
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (p: CaptionProgress) => void;
  /** one call per image that got an outcome in this run */
  onImage?: (r: ImageOutcome) => void;
}

export interface CaptionProgress {
  /** images finished in this run (captioned or failed) */
  done: number;
  /** images this run has to do (skipped ones are not counted) */
  total: number;
  skipped: number;
  failed: number;
  imagesPerMinute: number;
  /** seconds, undefined until the first image is done */
  etaSeconds: number | undefined;
  /** images in the batch being captioned */
  current: string[];
}

export type ImageOutcome = { path: string; ok: true; caption: string; seconds: number } | { path: string; ok: false; error: string; code: string };

export interface CaptionSummary {
  total: number;
  captioned: number;
  skipped: number;
  failed: { path: string; error: string; code: string }[];
  cancelled: boolean;
  seconds: number;
  imagesPerMinute: number;
  manifest?: string;
  /** bytes of a torn last record cut from the manifest when the run started */
  repairedBytes: number;
  /** files met in the folders that are not images or cannot be read, by reason ('not an image': 12, ...) */
  ignored: Record<string, number>;
}

/** What `{name}`, `{folder}` and `{existing}` become; unknown placeholders are left as typed. */
export function fillPrompt(template: string, vars: { imagePath: string; existing?: string }): string {
  const values: Record<string, string> = {
    name: path.parse(vars.imagePath).name,
    folder: path.basename(path.dirname(path.resolve(vars.imagePath))),
    existing: (vars.existing ?? '').trim(),
  };
  return template.replace(/\{(name|folder|existing)\}/g, (_, k: string) => values[k]);
}

export function promptFor(preset: CaptionPreset, custom?: string): string {
  if (preset === 'custom') {
    if (!custom?.trim()) throw new Error('the custom preset needs a prompt');
    return custom;
  }
  return PRESET_PROMPTS[preset];
}

/** A file the folder walk did not take, and why (counted in the summary). */
export interface SkippedFile {
  path: string;
  /** a short stable reason: 'not an image', 'link outside the folder', 'not a regular file', ... */
  reason: string;
}

/** What a list of files and folders holds. */
export interface ImageScan {
  /** image files, absolute, sorted, without duplicates */
  images: string[];
  /** image -> the folder its real path must stay inside: the folder given, or an explicit file's own folder */
  roots: Map<string, string>;
  /** files named explicitly that cannot be read: each fails on its own line, the job goes on */
  refused: { path: string; code: string; error: string }[];
  /** files met in folders and not taken */
  skipped: SkippedFile[];
}

const SKIP_REASON: Record<FileRefusal, string> = {
  missing: 'missing',
  'dangling-link': 'dangling link',
  outside: 'link outside the folder',
  'not-regular': 'not a regular file',
  'too-large': 'too large',
  unreadable: 'unreadable',
};

/**
 * Files and folders -> image files. Folders are walked recursively (hidden folders and node_modules
 * skipped); a symbolic link is followed when its target stays inside the folder given, refused
 * otherwise; links to folders are not followed (no loops). A file named explicitly is tried whatever its
 * extension, inside `explicitRoot`. Nothing is opened here: FIFOs and devices are decided by lstat/stat.
 */
export async function scanImagePaths(inputs: string[], cwd = process.cwd()): Promise<ImageScan> {
  const scan: ImageScan = { images: [], roots: new Map(), refused: [], skipped: [] };
  const take = (file: string, root: string) => {
    if (!scan.roots.has(file)) scan.roots.set(file, root);
  };
  const walk = async (dir: string, root: string): Promise<void> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(dir, { withFileTypes: true });
    } catch (err) {
      scan.skipped.push({ path: dir, reason: `unreadable folder (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
      return;
    }
    for (const e of entries) {
      const full = path.join(dir, e.name);
      if (e.isDirectory()) {
        if (!e.name.startsWith('.') && e.name !== 'node_modules') await walk(full, root);
        continue;
      }
      if (!IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) {
        scan.skipped.push({ path: full, reason: e.isFile() ? 'not an image' : e.isSymbolicLink() ? 'link, not an image name' : 'not a regular file' });
        continue;
      }
      if (e.isFile()) take(full, root);
      else if (e.isSymbolicLink()) {
        try {
          await checkRegularFile(full, { root, maxBytes: Number.MAX_SAFE_INTEGER });
          take(full, root);
        } catch (err) {
          const reason = err instanceof FileRefusedError ? SKIP_REASON[err.reason] : 'unreadable';
          scan.skipped.push({ path: full, reason: reason === 'not a regular file' ? 'link to a folder or device' : reason });
        }
      } else scan.skipped.push({ path: full, reason: 'not a regular file' });
    }
  };
  for (const input of inputs) {
    const abs = path.resolve(input);
    const lst = await fsp.lstat(abs).catch(() => undefined);
    if (lst?.isDirectory()) {
      await walk(abs, abs);
      continue;
    }
    try {
      const root = explicitRoot(abs, cwd);
      await checkRegularFile(abs, { root, maxBytes: Number.MAX_SAFE_INTEGER, name: input });
      take(abs, root);
    } catch (err) {
      scan.refused.push({ path: abs, code: errorCode(err), error: err instanceof Error ? err.message : String(err) });
    }
  }
  scan.images = [...scan.roots.keys()].sort();
  return scan;
}

/** The summary's `ignored` counts in words: "12 not an image, 2 link outside the folder". */
export function describeIgnored(ignored: Readonly<Record<string, number>>): string {
  return Object.entries(ignored)
    .sort((a, b) => b[1] - a[1])
    .map(([reason, n]) => `${n} ${reason}`)
    .join(', ');
}

/**
 * The folder an explicitly named file (or the link it is) must stay inside: the current folder when the
 * file is named inside it (the user's project, like a workspace), else the file's own folder.
 */
export function explicitRoot(file: string, cwd = process.cwd()): string {
  const abs = path.resolve(cwd, file);
  return isInside(path.resolve(cwd), abs) ? path.resolve(cwd) : path.dirname(abs);
}

/** Files and folders -> image files, sorted, without duplicates (see scanImagePaths). */
export async function expandImagePaths(inputs: string[]): Promise<string[]> {
  return (await scanImagePaths(inputs)).images;
}

interface Planned {
  path: string;
  prompt: string;
  /** the caption already there (sidecar or manifest), for {existing} and 'append' */
  existing?: string;
  sidecar?: string;
}

function errorCode(err: unknown): string {
  return err instanceof EngineError ? err.code : err instanceof Error && err.name === 'AbortError' ? 'ABORTED' : 'INTERNAL';
}

function isAbort(err: unknown, signal?: AbortSignal): boolean {
  return errorCode(err) === 'ABORTED' || !!signal?.aborted;
}

/**
 * A sidecar extension must name a file next to the image, never the image or another place: '.txt',
 * '.caption'... Refused: no leading dot, a path separator, '..', an image extension (it would overwrite
 * the image when the names match), control characters. Throws an Error saying which.
 */
export function checkSidecarExt(ext: string): void {
  if (!/^\.[^./\\]+$/.test(ext) || ext.length > 32) throw new Error(`--ext must be a dot and a name without separators, like .txt (got ${JSON.stringify(ext)})`);
  if (/[\x00-\x1f\x7f:*?"<>|]/.test(ext)) throw new Error(`--ext ${JSON.stringify(ext)} has characters a file name cannot have`);
  if (IMAGE_EXTENSIONS.includes(ext.toLowerCase()) || ['.svg', '.bmp', '.heic', '.heif', '.jxl'].includes(ext.toLowerCase())) {
    throw new Error(`--ext ${ext} is an image extension: the caption would overwrite images`);
  }
}

/** Runs one caption job to its end, or to cancellation. Per-image failures are recorded, not thrown. */
export async function runCaptionJob(backend: CaptionBackend, opts: CaptionJobOptions): Promise<CaptionSummary> {
  const started = performance.now();
  const output = opts.output ?? 'sidecar';
  const existingPolicy = opts.existing ?? 'skip';
  const batchSize = Math.max(1, Math.floor(opts.batchSize ?? 1));
  const template = promptFor(opts.preset ?? 'short', opts.prompt);
  const ext = opts.ext ?? '.txt';
  checkSidecarExt(ext);
  const separator = (opts.preset ?? 'short') === 'tags' ? ', ' : ' ';
  const signal = opts.signal;

  let manifest: Manifest | undefined;
  if (output !== 'sidecar' || opts.manifest) {
    if (!opts.manifest) throw new Error(`output ${output} needs a manifest file`);
    const format: ManifestFormat = output === 'sidecar' ? Manifest.formatOf(opts.manifest) : output;
    manifest = await Manifest.open(opts.manifest, format);
  }
  const summary: CaptionSummary = {
    total: 0, captioned: 0, skipped: 0, failed: [], cancelled: false, seconds: 0, imagesPerMinute: 0,
    manifest: manifest?.file, repairedBytes: manifest?.repairedBytes ?? 0, ignored: {},
  };
  for (const f of opts.skippedFiles ?? []) summary.ignored[f.reason] = (summary.ignored[f.reason] ?? 0) + 1;

  try {
    // ---- plan ----------------------------------------------------------------------------
    const done = manifest?.successes() ?? new Map<string, CaptionRecord>();
    const sidecarOwner = new Map<string, string>();
    const plan: Planned[] = [];
    const dirs = new Set<string>();
    const earlyFailures: ImageOutcome[] = (opts.refused ?? []).map((r) => ({ path: r.path, ok: false as const, code: r.code, error: r.error }));
    for (const imagePath of new Set(opts.images.map((p) => path.resolve(p)))) {
      dirs.add(path.dirname(imagePath));
      const record = manifest ? done.get(manifest.key(imagePath)) : undefined;
      const sidecar = sidecarPath(imagePath, ext);
      const owner = sidecarOwner.get(sidecar);
      if (owner && output === 'sidecar') {
        earlyFailures.push({ path: imagePath, ok: false, code: 'SIDECAR_CLASH', error: `${path.basename(sidecar)} is already the caption file of ${path.basename(owner)}` });
        continue;
      }
      sidecarOwner.set(sidecar, imagePath);
      let sidecarText: string | undefined;
      try {
        sidecarText = await readSidecar(sidecar);
      } catch (err) {
        // a sidecar that is a FIFO, a link out, too large...: this image fails, the job goes on
        earlyFailures.push({ path: imagePath, ok: false, code: errorCode(err), error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      const hasCaption = output === 'sidecar' ? sidecarText !== undefined : record !== undefined;
      if (hasCaption && existingPolicy === 'skip') {
        summary.skipped++;
        continue;
      }
      const existing = output === 'sidecar' ? sidecarText : (record?.caption ?? sidecarText);
      plan.push({ path: imagePath, prompt: fillPrompt(template, { imagePath, existing }), existing, sidecar: output === 'sidecar' ? sidecar : undefined });
    }
    if (output === 'sidecar') for (const d of dirs) removeStaleTempFiles(d);
    summary.total = plan.length + earlyFailures.length;

    // ---- progress --------------------------------------------------------------------------
    let finished = 0;
    let current: string[] = [];
    const progress = () => {
      const minutes = (performance.now() - started) / 60_000;
      const rate = finished && minutes > 0 ? finished / minutes : 0;
      opts.onProgress?.({
        done: finished, total: summary.total, skipped: summary.skipped, failed: summary.failed.length,
        imagesPerMinute: rate, etaSeconds: rate ? ((summary.total - finished) / rate) * 60 : undefined, current,
      });
    };
    const appendRecord = async (p: Planned | { path: string; prompt?: string }, outcome: ImageOutcome) => {
      await manifest?.append({
        path: manifest.key(p.path), caption: outcome.ok ? outcome.caption : '', model: backend.model, variant: backend.variant,
        prompt: p.prompt ?? '', seconds: outcome.ok ? Math.round(outcome.seconds * 1000) / 1000 : 0, error: outcome.ok ? '' : `${outcome.code}: ${outcome.error}`,
      });
    };
    const record = async (p: Planned | { path: string; prompt?: string }, outcome: ImageOutcome) => {
      await appendRecord(p, outcome);
      count(outcome);
    };
    const count = (outcome: ImageOutcome) => {
      if (outcome.ok) summary.captioned++;
      else summary.failed.push({ path: outcome.path, error: outcome.error, code: outcome.code });
      finished++;
      opts.onImage?.(outcome);
      progress();
    };
    const fail = (p: Planned, err: unknown) => record(p, { path: p.path, ok: false, code: errorCode(err), error: oneLine(err instanceof Error ? err.message : String(err)) });

    for (const f of earlyFailures) await record({ path: f.path }, f);
    progress();

    // ---- prefetch + batches ----------------------------------------------------------------
    const queue = new CaptionQueue<{ item: Planned; image?: ImageInput; error?: unknown }>(Math.max(batchSize, opts.prefetch ?? 2 * batchSize));
    const producer = (async () => {
      for (const item of plan) {
        if (signal?.aborted) break;
        let entry: { item: Planned; image?: ImageInput; error?: unknown };
        try {
          entry = { item, image: await backend.prepare(item.path, signal, opts.roots?.get(item.path) ?? path.dirname(item.path)) };
        } catch (error) {
          entry = { item, error };
        }
        if (!(await queue.put(entry, signal))) break;
      }
      queue.close();
    })();

    while (!signal?.aborted) {
      // Fill the batch with images that prepared well; failures are recorded on the way and do not take a row.
      const ready: { item: Planned; image: ImageInput }[] = [];
      let drained = false;
      while (ready.length < batchSize && !signal?.aborted) {
        const got = await queue.take(batchSize - ready.length, signal);
        if (!got.length) {
          drained = true;
          break;
        }
        for (const e of got) {
          if (e.error === undefined) ready.push({ item: e.item, image: e.image! });
          else if (!isAbort(e.error, signal)) await fail(e.item, e.error);
        }
      }
      if (!ready.length || signal?.aborted) {
        if (drained || signal?.aborted) break;
        continue;
      }
      current = ready.map((r) => r.item.path);
      progress();
      const ended = new Set<number>();
      try {
        const items = ready.map((r) => ({ path: r.item.path, image: r.image, prompt: r.item.prompt, prefix: opts.prefix || undefined }));
        for await (const res of backend.captionBatch(items, {
          maxNewTokens: Math.max(1, opts.maxNewTokens ?? 64), temperature: opts.temperature ?? 0, seed: opts.seed, signal,
        })) {
          const p = ready[res.index].item;
          if ('error' in res) {
            if (isAbort(res.error, signal)) continue; // not done: a rerun does it
            ended.add(res.index);
            await fail(p, res.error);
            continue;
          }
          if (signal?.aborted) continue; // an answer cut short by the abort is not a caption
          ended.add(res.index);
          const caption = finalCaption(res.text, opts.prefix, existingPolicy === 'append' ? p.existing : undefined, separator);
          // Manifest record first, then the sidecar: a kill in between leaves a record without its sidecar, so the
          // rerun (which goes by sidecars) redoes the image and compaction keeps its last record only.
          const outcome: ImageOutcome = { path: p.path, ok: true, caption, seconds: res.seconds };
          try {
            await appendRecord(p, outcome);
            if (p.sidecar) await writeFileAtomic(p.sidecar, caption);
          } catch (err) {
            await fail(p, err);
            continue;
          }
          count(outcome);
        }
      } catch (err) {
        if (isAbort(err, signal)) break;
        // the backend failed as a whole (engine crash...): these images fail, the job goes on
        for (let i = 0; i < ready.length; i++) if (!ended.has(i)) await fail(ready[i].item, err);
      }
      current = [];
    }
    summary.cancelled = !!signal?.aborted;
    queue.close();
    await producer;
    if (manifest?.needsCompaction()) await manifest.compact();
  } finally {
    await manifest?.close();
  }
  summary.seconds = (performance.now() - started) / 1000;
  const processed = summary.captioned + summary.failed.length;
  summary.imagesPerMinute = summary.seconds > 0 ? (processed * 60) / summary.seconds : 0;
  return summary;
}

/** The text to save: the prefix kept verbatim at the start, whitespace trimmed, appended after an old caption. */
export function finalCaption(text: string, prefix: string | undefined, existing: string | undefined, separator: string): string {
  let caption = prefix ? (text.startsWith(prefix) ? text : prefix + text).trimEnd() : text.trim();
  const old = existing?.trim();
  if (old) caption = old + separator + caption;
  return caption;
}
