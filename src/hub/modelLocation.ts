// The vscode-free half of the model store: what the `llava.model` setting means, where a catalog
// model lives on disk, whether it is complete, and how sizes and progress read. Plain Node so that
// test/unit/modelStore.test.ts can run it without VS Code; src/extension/modelStore.ts adds the UI.

import { readdir, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { formatVariantChoice, parseVariantChoice, type VariantChoice } from '../core';
import type { Catalog, CatalogEntry } from './catalog';
import { readManifest, type DownloadManifest } from './manifest';
import { folderIdForRepo } from './plan';

/**
 * The reserved `llava.model` value (and CLI `--model` value) for the model shipped inside the
 * extension. A setting holds this word, never the folder's absolute path: the extension's folder
 * name carries its version, so a path would break at the next update.
 */
export const BUILTIN_MODEL_SETTING = 'builtin';
/** How the built-in model is named wherever a user sees it (status bar, Select Model, the no-model choice). */
export const BUILTIN_MODEL_LABEL = 'Built-in demo model (shapes)';
/** What it can do, in the user's words (Select Model's description). */
export const BUILTIN_MODEL_DESCRIPTION = 'no download; short answers about pictures of coloured shapes, each question on its own, nothing else';

/** Where the built-in model lives inside an extension (or npm package) folder: `<root>/models/builtin`. */
export function builtinModelFolder(packageRoot: string): string {
  return path.join(packageRoot, 'models', 'builtin');
}

/**
 * What `llava.model` names. A Hub model is written `<catalog id or owner/repo>[:<variants>]`, e.g.
 * `nanollava-1.5`, `onnx-community/nanoLLaVA-1.5`, `nanollava-1.5:fp16` or
 * `nanollava-1.5:vision=fp16,decoder=q4` (':' cannot occur in catalog ids or Hub repo names, so it
 * is unambiguous); anything absolute is a local folder; `builtin` (any case) is the model shipped
 * inside the extension (no catalog id or Hub repo can be spelled so: repos have an owner).
 */
export type ModelRef =
  | { kind: 'builtin' }
  | { kind: 'folder'; path: string }
  | { kind: 'catalog'; name: string; variant?: string };

export function parseModelSetting(value: string, home: string): ModelRef {
  const v = value.trim();
  if (v.toLowerCase() === BUILTIN_MODEL_SETTING) return { kind: 'builtin' };
  // '~' is a shell convenience people type into settings; Node does not expand it.
  if (v === '~' || v.startsWith('~/') || v.startsWith('~\\')) return { kind: 'folder', path: path.join(home, v.slice(1)) };
  // Accept both path flavours on every OS: a Windows path in a settings file synced to Linux is
  // still a path (it will then fail the folder check with a clear message), never a model name.
  if (path.posix.isAbsolute(v) || path.win32.isAbsolute(v) || /^[a-zA-Z]:[\\/]/.test(v)) {
    return { kind: 'folder', path: path.normalize(v) };
  }
  const colon = v.lastIndexOf(':');
  if (colon > 0) return { kind: 'catalog', name: v.slice(0, colon), variant: v.slice(colon + 1) || undefined };
  return { kind: 'catalog', name: v };
}

/**
 * The setting value for a model: `builtin` for the built-in one; for a Hub model its catalog id
 * (else its repo), and the variants when pinned. parseModelSetting() reads each back.
 */
export function formatModelSetting(model: { kind: 'builtin' } | { entry?: CatalogEntry; repo: string }, choice?: VariantChoice): string {
  if ('kind' in model) return BUILTIN_MODEL_SETTING;
  const name = model.entry?.id ?? model.repo;
  return choice === undefined ? name : `${name}:${formatVariantChoice(choice)}`;
}

/** A catalog entry by id or by Hub repo (case-insensitive: the Hub treats repo names so). */
export function findCatalogEntry(catalog: Catalog, name: string): CatalogEntry | undefined {
  const n = name.toLowerCase();
  return catalog.models.find((m) => m.id.toLowerCase() === n) ?? catalog.models.find((m) => m.repo.toLowerCase() === n);
}

export interface ResolvedHubModel {
  /** the catalog entry, when the name is one; any other `owner/repo` is a Hub model without one */
  entry?: CatalogEntry;
  repo: string;
  revision: string;
  /** what the user pinned (undefined: chosen from what exists) */
  choice?: VariantChoice;
  /** where downloads go: `<modelsRoot>/<id>` for a catalog entry, `<modelsRoot>/<owner>--<name>` otherwise */
  folder: string;
}

const REPO = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;

/** Resolves a catalog id or Hub repo (with an optional variant choice), or says in one sentence why it cannot. */
export function resolveHubModel(
  catalog: Catalog,
  ref: { name: string; variant?: string },
  modelsRoot: string,
): ResolvedHubModel | { error: string } {
  const entry = findCatalogEntry(catalog, ref.name);
  if (!entry && !REPO.test(ref.name)) {
    return {
      error: `"${ref.name}" is neither an absolute folder path, a model of the catalog (${catalog.models.map((m) => m.id).join(', ')}) nor a Hub repository (owner/name).`,
    };
  }
  const parsed = parseVariantChoice(ref.variant ?? '');
  if ('error' in parsed) return { error: `${entry?.label ?? ref.name}: ${parsed.error}.` };
  const repo = entry?.repo ?? ref.name;
  return {
    ...(entry ? { entry } : {}),
    repo,
    revision: entry?.revision ?? 'main',
    ...(parsed.choice !== undefined ? { choice: parsed.choice } : {}),
    folder: path.join(modelsRoot, entry?.id ?? folderIdForRepo(repo)),
  };
}

/** Mirrors downloadPlan(): `<destRoot>/<entry.id>`. */
export function catalogModelFolder(modelsRoot: string, entry: CatalogEntry): string {
  return path.join(modelsRoot, entry.id);
}

/**
 * The folder downloaded models go to: the `llava.modelsFolder` setting when set (absolute, '~'
 * expanded), else `<globalStorage>/models`.
 */
export function modelsRootFor(setting: string, globalStorage: string, home: string): string | { error: string } {
  const v = setting.trim();
  if (!v) return path.join(globalStorage, 'models');
  const ref = parseModelSetting(v, home);
  if (ref.kind !== 'folder') return { error: `llava.modelsFolder must be an absolute path, got "${v}".` };
  return ref.path;
}

/**
 * Files of the download recorded in `folder`'s manifest that are not complete (a file counts when
 * the manifest lists it as done and it is on disk with the recorded size). No manifest: the model
 * was never downloaded there, and the manifest itself is reported missing. Empty: ready.
 */
export async function missingModelFiles(folder: string): Promise<string[]> {
  const manifest = await readManifest(folder);
  if (!manifest?.planned?.length) return ['.llava-download.json'];
  const missing: string[] = [];
  for (const f of manifest.planned) {
    const done = manifest.files[f];
    const size = await fileSize(path.join(folder, ...f.split('/')));
    if (!done || size !== done.size) missing.push(f);
  }
  return missing;
}

export interface DownloadedModel {
  folder: string;
  manifest: DownloadManifest;
  /** bytes of every file in the folder, partial downloads included */
  sizeOnDisk: number;
  complete: boolean;
}

/** Every folder under the models root that holds a download manifest, by name. */
export async function listDownloadedModels(modelsRoot: string): Promise<DownloadedModel[]> {
  let names: string[];
  try {
    names = (await readdir(modelsRoot)).sort();
  } catch {
    return [];
  }
  const out: DownloadedModel[] = [];
  for (const name of names) {
    const folder = path.join(modelsRoot, name);
    const manifest = await readManifest(folder);
    if (!manifest) continue;
    out.push({ folder, manifest, sizeOnDisk: await folderBytes(folder), complete: (await missingModelFiles(folder)).length === 0 });
  }
  return out;
}

async function folderBytes(dir: string): Promise<number> {
  let sum = 0;
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) sum += await folderBytes(p);
    else if (e.isFile()) sum += (await fileSize(p)) ?? 0;
  }
  return sum;
}

/**
 * Checks that a user's folder looks like a Hub-layout model (config.json and onnx/*.onnx).
 * Returns the problem in one sentence, or undefined when it looks usable; the engine's folder
 * reader does the full validation when it loads.
 */
export async function checkLocalModelFolder(dir: string): Promise<string | undefined> {
  let st;
  try {
    st = await stat(dir);
  } catch {
    return `${dir} does not exist.`;
  }
  if (!st.isDirectory()) return `${dir} is a file, not a folder.`;
  if (!(await isFile(path.join(dir, 'config.json')))) {
    return `${dir} has no config.json: pick the model's top folder (the one holding config.json and onnx/).`;
  }
  let onnx: string[];
  try {
    onnx = (await readdir(path.join(dir, 'onnx'))).filter((f) => f.endsWith('.onnx'));
  } catch {
    return `${dir} has no onnx/ folder: it needs ONNX exports in the transformers.js layout (onnx/vision_encoder*.onnx, ...).`;
  }
  if (onnx.length === 0) return `${dir}/onnx has no .onnx files.`;
  return undefined;
}

const MB = 1_000_000; // decimal megabytes, the unit the Hub shows file sizes in

/** "812 MB", "3.4 MB", or "size unknown" when the catalog has not recorded every size. */
export function formatSize(bytes: number | undefined): string {
  if (bytes === undefined) return 'size unknown';
  const mb = bytes / MB;
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb).toString()} MB`;
}

/** "12.3 / 812.0 MB (2%)" or, without a total, "12.3 MB". */
export function formatProgress(bytes: number, total: number | undefined): string {
  const done = (bytes / MB).toFixed(1);
  if (!total) return `${done} MB`;
  const pct = Math.min(100, Math.floor((bytes / total) * 100));
  return `${done} / ${(total / MB).toFixed(1)} MB (${pct}%)`;
}

/**
 * Percentage points to report to VS Code's progress API, which adds up increments: the
 * difference between what was shown and what is now done, never negative.
 */
export function progressIncrement(shownPercent: number, bytes: number, total: number | undefined): number {
  if (!total) return 0;
  const now = Math.min(100, (bytes / total) * 100);
  return Math.max(0, now - shownPercent);
}

/** Most recent first, no duplicates (same path after normalising), at most `max`. */
export function rememberFolder(list: readonly string[], folder: string, max = 5): string[] {
  const key = (p: string) => path.normalize(p).replace(/[\\/]+$/, '');
  return [folder, ...list.filter((p) => key(p) !== key(folder))].slice(0, max);
}

async function isFile(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

async function fileSize(p: string): Promise<number | undefined> {
  try {
    return (await stat(p)).size;
  } catch {
    return undefined;
  }
}
