// The model store: turns the `llava.model` setting into a folder the engine can load, and when
// there is none, asks the user (download a catalog model, or point at a local folder). The pure
// decisions live in modelLocation.ts; this file owns the dialogs, the download progress and the
// settings writes.

import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { config } from './config';
import { loadCatalog, type Catalog, type CatalogEntry } from '../hub';
import { downloadModel } from '../hub';
import { AbortedError, ChecksumError, DownloadError } from '../core';
import { downloadFailureGuidance, noModelGuidance, type NoModelSituation } from './guidance';
import { plainText, runSettingAction } from './guidanceActions';
import {
  checkLocalModelFolder,
  formatModelSetting,
  formatProgress,
  missingCatalogFiles,
  modelsRootFor,
  parseModelSetting,
  progressIncrement,
  rememberFolder,
  resolveCatalogModel,
  variantSizeBytes,
  formatSize,
  catalogModelFolder,
} from '../hub';

const RECENT_FOLDERS_KEY = 'llava.recentModelFolders';
/** ms between progress notifications: often enough to look alive, rarely enough to stay cheap */
const PROGRESS_INTERVAL_MS = 250;

/** What a download would fetch, and the words for offering it. */
export interface ModelOfferInfo {
  entry: CatalogEntry;
  variant: string;
  /** the setting names something else (or nothing usable): point it at the download once done */
  setsSetting: boolean;
  situation: NoModelSituation;
}

/** What `llava.model` currently points at, as the pickers and the status bar describe it. */
export type CurrentModel =
  | { kind: 'folder'; path: string; label: string; problem?: string }
  | { kind: 'catalog'; entry: CatalogEntry; variant: string; folder: string; label: string; missing: string[] }
  | { kind: 'invalid'; label: string; problem: string };

export class ModelStore {
  private catalogCache?: Catalog;

  constructor(
    private readonly context: vscode.ExtensionContext,
    readonly log: vscode.LogOutputChannel,
  ) {}

  /** The catalog bundled with the extension (models/catalog.json at build time). */
  catalog(): Catalog {
    this.catalogCache ??= loadCatalog();
    return this.catalogCache;
  }

  /** Where downloads go: `llava.modelsFolder`, else the extension's global storage. */
  modelsRoot(): string {
    const root = modelsRootFor(config.modelsFolder(), this.context.globalStorageUri.fsPath, os.homedir());
    if (typeof root !== 'string') throw new Error(root.error);
    return root;
  }

  /** Reads the setting and checks the disk; shows nothing. */
  async current(): Promise<CurrentModel> {
    const setting = config.model();
    const ref = parseModelSetting(setting, os.homedir());
    if (ref.kind === 'folder') {
      const problem = await checkLocalModelFolder(ref.path);
      return { kind: 'folder', path: ref.path, label: path.basename(ref.path), ...(problem ? { problem } : {}) };
    }
    let root: string;
    try {
      root = this.modelsRoot();
    } catch (err) {
      return { kind: 'invalid', label: setting, problem: (err as Error).message };
    }
    const resolved = resolveCatalogModel(this.catalog(), ref, root);
    if ('error' in resolved) return { kind: 'invalid', label: setting, problem: resolved.error };
    const missing = await missingCatalogFiles(resolved.folder, resolved.entry, resolved.variant);
    return { kind: 'catalog', ...resolved, label: resolved.entry.label, missing };
  }

  /** The folder to load, or undefined when the setting names nothing usable yet. No UI. */
  async resolveModelDir(): Promise<string | undefined> {
    const cur = await this.current();
    if (cur.kind === 'folder') return cur.problem ? undefined : cur.path;
    if (cur.kind === 'catalog') return cur.missing.length === 0 ? cur.folder : undefined;
    return undefined;
  }

  /**
   * What a download would fetch when the setting names nothing usable yet (the model the setting
   * names, else the catalog's default), with the words for the inline choice; undefined when the
   * configured model can be loaded. No UI.
   */
  async offer(): Promise<ModelOfferInfo | undefined> {
    const cur = await this.current();
    if (cur.kind === 'folder' && !cur.problem) return undefined;
    if (cur.kind === 'catalog' && cur.missing.length === 0) return undefined;
    const { entry, variant } =
      cur.kind === 'catalog'
        ? { entry: cur.entry, variant: cur.variant }
        : (() => {
            const e = this.catalog().models.find((m) => m.id === this.catalog().defaultModel)!;
            return { entry: e, variant: e.defaultVariant };
          })();
    const builtin = await this.builtinModel();
    return {
      entry,
      variant,
      setsSetting: cur.kind !== 'catalog',
      situation: {
        offer: { label: entry.label, size: knownSize(variantSizeBytes(entry, variant)), licence: entry.licence },
        problem: cur.kind === 'catalog' ? undefined : cur.problem,
        builtin: builtin ? { label: path.basename(builtin) } : undefined,
      },
    };
  }

  /**
   * A model folder shipped inside the extension (`models/builtin/`, Hub layout), when the package
   * carries one: the inline choice then offers it as the no-download option.
   */
  async builtinModel(): Promise<string | undefined> {
    const dir = vscode.Uri.joinPath(this.context.extensionUri, 'models', 'builtin').fsPath;
    return (await checkLocalModelFolder(dir)) ? undefined : dir;
  }

  /** Downloads what offer() names (with progress) and points the setting at it. Throws on failure. */
  async downloadOffered(signal?: AbortSignal): Promise<string | undefined> {
    const o = await this.offer();
    if (!o) return this.resolveModelDir();
    const folder = await this.downloadWithProgress(o.entry, o.variant, signal);
    if (o.setsSetting) await this.setModelSetting(formatModelSetting(o.entry, o.variant));
    return folder;
  }

  /**
   * The folder to load; when there is none, offers Download <label> (<size>) and Use Local Folder…
   * in a notification (for commands outside the chat, which asks inline). Undefined when the user
   * dismisses, cancels or a download fails.
   */
  async ensureModel(): Promise<string | undefined> {
    const dir = await this.resolveModelDir();
    if (dir) return dir;
    const o = await this.offer();
    if (!o) return this.resolveModelDir();
    const g = noModelGuidance(o.situation);
    this.log.info(`[models] ${plainText(g.text)}`);
    const picked = await vscode.window.showInformationMessage(plainText(g.text), ...g.actions.map((a) => a.label));
    const choice = g.actions.find((a) => a.label === picked);
    if (!choice) return undefined;
    if (choice.id === 'download') return this.download(o.entry, o.variant, o.setsSetting);
    if (choice.id === 'localFolder') return this.pickLocalFolder();
    if (choice.id === 'builtin') return this.useBuiltin();
    return undefined;
  }

  /** Points `llava.model` at the built-in model folder. */
  async useBuiltin(): Promise<string | undefined> {
    const dir = await this.builtinModel();
    if (dir) await this.setModelSetting(dir);
    return dir;
  }

  /**
   * Folder picker; checks the folder looks like a model, saves it to `llava.model` (global) and
   * remembers it for Select Model. Undefined when the user cancels.
   */
  async pickLocalFolder(): Promise<string | undefined> {
    for (;;) {
      const picked = await vscode.window.showOpenDialog({
        canSelectFolders: true,
        canSelectFiles: false,
        canSelectMany: false,
        openLabel: 'Use This Model Folder',
        title: 'Select a model folder (Hub layout: config.json and onnx/)',
      });
      if (!picked?.[0]) return undefined;
      const folder = picked[0].fsPath;
      const problem = await checkLocalModelFolder(folder);
      if (!problem) {
        await this.useLocalFolder(folder);
        return folder;
      }
      this.log.warn(`[models] ${problem}`);
      const again = await vscode.window.showErrorMessage(problem, 'Choose Another Folder…');
      if (again !== 'Choose Another Folder…') return undefined;
    }
  }

  async useLocalFolder(folder: string): Promise<void> {
    await this.context.globalState.update(RECENT_FOLDERS_KEY, rememberFolder(this.recentFolders(), folder));
    await this.setModelSetting(folder);
  }

  recentFolders(): string[] {
    const v = this.context.globalState.get<unknown>(RECENT_FOLDERS_KEY);
    return Array.isArray(v) ? v.filter((p): p is string => typeof p === 'string') : [];
  }

  async isDownloaded(entry: CatalogEntry, variant: string): Promise<boolean> {
    return (await missingCatalogFiles(catalogModelFolder(this.modelsRoot(), entry), entry, variant)).length === 0;
  }

  /** Writes `llava.model` in the user's (global) settings, and says so when a workspace value hides it. */
  async setModelSetting(value: string): Promise<void> {
    const section = llavaSettings();
    await section.update('model', value, vscode.ConfigurationTarget.Global);
    this.log.info(`[models] llava.model = ${value}`);
    const inspected = section.inspect<string>('model');
    if (inspected?.workspaceValue !== undefined || inspected?.workspaceFolderValue !== undefined) {
      void vscode.window.showWarningMessage(
        `Saved llava.model in your user settings, but this workspace sets its own value (${inspected.workspaceFolderValue ?? inspected.workspaceValue}), which still applies here.`,
      );
    }
  }

  /**
   * Downloads one variant with a cancellable progress notification and, on failure, says why in
   * words with what to do next (Retry / Proxy Settings / Use Local Folder…). Cancelling keeps the
   * `.part` file, so the next download resumes. Returns the folder, or undefined when cancelled or
   * failed. `setsSetting`: point `llava.model` at it once downloaded.
   */
  async download(entry: CatalogEntry, variant: string, setsSetting = false): Promise<string | undefined> {
    try {
      const folder = await this.downloadWithProgress(entry, variant);
      if (setsSetting) await this.setModelSetting(formatModelSetting(entry, variant));
      return folder;
    } catch (err) {
      if (err instanceof AbortedError) {
        void vscode.window.showInformationMessage(
          `Download of ${entry.label} cancelled. Downloading again resumes where it stopped.`,
        );
        return undefined;
      }
      const g = downloadFailureGuidance(err, entry.label);
      const choice = await vscode.window.showErrorMessage(plainText(g.text), ...g.actions.map((a) => a.label));
      const action = g.actions.find((a) => a.label === choice);
      if (!action) return undefined;
      if (action.id === 'download') return this.download(entry, variant, setsSetting);
      if (action.id === 'localFolder') return this.pickLocalFolder();
      await runSettingAction(action.id, this.log);
      return undefined;
    }
  }

  /**
   * The download itself, with a cancellable progress notification; `signal` (the chat's Stop)
   * cancels it too. Throws AbortedError when cancelled, the hub's typed errors when it fails (the
   * technical detail goes to the log here; callers word it with guidance.ts).
   *
   * Proxies: nothing to pass. The extension host patches Node's http/https modules to follow the
   * user's `http.proxy` / `http.proxyStrictSSL` settings (and the system proxy), and
   * download.ts uses those modules' default agents, so the Hub is reached the way VS Code itself
   * reaches the network. (The forked engine process does not get that patch; it never downloads.)
   */
  async downloadWithProgress(entry: CatalogEntry, variant: string, signal?: AbortSignal): Promise<string> {
    const root = this.modelsRoot();
    const size = formatSize(variantSizeBytes(entry, variant));
    this.log.info(`[models] downloading ${entry.repo}@${entry.revision} (${variant}, ${size}) into ${root}`);
    try {
      const folder = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Downloading ${entry.label} (${variant})`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const subs = [token.onCancellationRequested(() => abort.abort())];
          const onStop = () => abort.abort();
          signal?.addEventListener('abort', onStop, { once: true });
          if (signal?.aborted) abort.abort();
          let shownPercent = 0;
          let lastReport = 0;
          try {
            return await downloadModel(entry, variant, root, {
              signal: abort.signal,
              onProgress: (p) => {
                const now = Date.now();
                if (now - lastReport < PROGRESS_INTERVAL_MS) return;
                lastReport = now;
                const increment = progressIncrement(shownPercent, p.bytes, p.total);
                shownPercent += increment;
                progress.report({ message: `${formatProgress(p.bytes, p.total)} · ${path.posix.basename(p.file)}`, increment });
              },
            });
          } finally {
            subs.forEach((s) => s.dispose());
            signal?.removeEventListener('abort', onStop);
          }
        },
      );
      this.log.info(`[models] ${entry.label} (${variant}) ready in ${folder}`);
      return folder;
    } catch (err) {
      if (err instanceof AbortedError) {
        this.log.info(`[models] download of ${entry.label} cancelled; what was downloaded is kept in ${root}`);
        throw err;
      }
      const what =
        err instanceof ChecksumError
          ? `a downloaded file is corrupt (checksum mismatch; it was deleted): ${err.message}`
          : err instanceof DownloadError
            ? err.message
            : `unexpected error: ${(err as Error).message ?? String(err)}`;
      this.log.error(`[models] download of ${entry.label} (${variant}) failed: ${what}`);
      if (err instanceof Error && err.stack && !(err instanceof DownloadError || err instanceof ChecksumError)) this.log.error(err.stack);
      throw err;
    }
  }
}

/** A size for the offer, or undefined when the catalog does not know it (no "size unknown" on a button). */
function knownSize(bytes: number | undefined): string | undefined {
  return bytes ? formatSize(bytes) : undefined;
}

/** The `llava` settings section, for the one write config.ts has no setter for (`llava.model`). */
function llavaSettings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('llava');
}
