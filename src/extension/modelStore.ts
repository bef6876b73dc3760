// The model store: turns the `llava.model` setting into a folder the engine can load, and when
// there is none, asks the user (download a catalog model, or point at a local folder). The pure
// decisions live in modelLocation.ts; this file owns the dialogs, the download progress and the
// settings writes.

import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { config } from './config';
import {
  checkLocalModelFolder,
  diskSpaceProblem,
  downloadOffer,
  downloadPlan,
  formatModelSetting,
  formatProgress,
  listDownloadedModels,
  loadCatalog,
  missingModelFiles,
  modelsRootFor,
  parseModelSetting,
  planFromHub,
  progressIncrement,
  readManifest,
  rememberFolder,
  resolveHubModel,
  type Catalog,
  type DownloadedModel,
  type DownloadManifest,
  type DownloadOffer,
  type DownloadPlan,
  type ResolvedHubModel,
} from '../hub';
import { AbortedError, EngineError, type VariantChoice } from '../core';

const RECENT_FOLDERS_KEY = 'llava.recentModelFolders';
const USE_LOCAL_FOLDER = 'Use Local Folder…';
/** ms between progress notifications: often enough to look alive, rarely enough to stay cheap */
const PROGRESS_INTERVAL_MS = 250;

/** What `llava.model` currently points at, as the pickers and the status bar describe it. */
export type CurrentModel =
  | { kind: 'folder'; path: string; label: string; problem?: string }
  | { kind: 'hub'; model: ResolvedHubModel; folder: string; label: string; missing: string[]; manifest?: DownloadManifest }
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
    const resolved = resolveHubModel(this.catalog(), ref, root);
    if ('error' in resolved) return { kind: 'invalid', label: setting, problem: resolved.error };
    const missing = await missingModelFiles(resolved.folder);
    const manifest = await readManifest(resolved.folder);
    return { kind: 'hub', model: resolved, folder: resolved.folder, label: resolved.entry?.label ?? resolved.repo, missing, ...(manifest ? { manifest } : {}) };
  }

  /** The folder to load, or undefined when the setting names nothing usable yet. No UI. */
  async resolveModelDir(): Promise<string | undefined> {
    const cur = await this.current();
    if (cur.kind === 'folder') return cur.problem ? undefined : cur.path;
    if (cur.kind === 'hub') return cur.missing.length === 0 ? cur.folder : undefined;
    return undefined;
  }

  /** The model a download would fetch: the one the setting names, else the catalog's default. */
  async modelToOffer(): Promise<ResolvedHubModel> {
    const cur = await this.current();
    if (cur.kind === 'hub') return cur.model;
    const entry = this.catalog().models.find((m) => m.id === this.catalog().defaultModel)!;
    return { entry, repo: entry.repo, revision: entry.revision, folder: path.join(this.modelsRoot(), entry.id) };
  }

  /**
   * Asks the Hub what `model` holds and chooses its files for the configured execution provider:
   * the plan to download and the offer to show ("Download nanoLLaVA 1.5, 1.1 GB?", licence, the
   * variant per part, the commit). One network call; throws DownloadError (code DOWNLOAD) offline.
   */
  async offer(model?: ResolvedHubModel): Promise<{ plan: DownloadPlan; offer: DownloadOffer }> {
    const m = model ?? (await this.modelToOffer());
    const provider = config.executionProvider();
    const plan = await planFromHub(
      { repo: m.repo, revision: m.revision, entry: m.entry, choice: m.choice },
      { provider: provider === 'auto' || provider === 'cpu' ? 'cpu' : 'gpu', envProxy: false },
    );
    return { plan, offer: downloadOffer(plan) };
  }

  /** Downloaded models under the models root, with size on disk, variant map and commit. */
  async downloaded(): Promise<DownloadedModel[]> {
    return listDownloadedModels(this.modelsRoot());
  }

  /**
   * The folder to load; when there is none, offers exactly "Download <label> (<size>)" and "Use
   * Local Folder…". Undefined when the user dismisses, cancels or a download fails.
   */
  async ensureModel(): Promise<string | undefined> {
    const cur = await this.current();
    if (cur.kind === 'folder' && !cur.problem) return cur.path;
    if (cur.kind === 'hub' && cur.missing.length === 0) return cur.folder;

    const why =
      cur.kind === 'hub'
        ? `${cur.label} is not downloaded yet.`
        : `The model in the llava.model setting cannot be used: ${cur.problem}`;
    this.log.info(`[models] ${why}`);
    let offered: { plan: DownloadPlan; offer: DownloadOffer };
    try {
      offered = await this.offer();
    } catch (err) {
      const message = err instanceof EngineError ? err.message : String((err as Error).message ?? err);
      this.log.error(`[models] cannot list the model on the Hub: ${message}`);
      const choice = await vscode.window.showErrorMessage(`${why} The Hub could not be asked for its files: ${message}`, USE_LOCAL_FOLDER, 'Show Logs');
      if (choice === USE_LOCAL_FOLDER) return this.pickLocalFolder();
      if (choice === 'Show Logs') this.log.show(true);
      return undefined;
    }
    const { plan, offer } = offered;
    // free space is checked before the offer, so "Download" is never a button that cannot work
    const short = await diskSpaceProblem(plan, this.modelsRoot()).catch(() => undefined);
    if (short) {
      this.log.error(`[models] ${short.message}`);
      const choice = await vscode.window.showErrorMessage(`${why} ${short.message}.`, USE_LOCAL_FOLDER, 'Show Logs');
      if (choice === USE_LOCAL_FOLDER) return this.pickLocalFolder();
      if (choice === 'Show Logs') this.log.show(true);
      return undefined;
    }
    const download = 'Download';
    // a notification shows no `detail`: licence, variants and commit go in the message itself
    const choice = await vscode.window.showInformationMessage(`${why} ${offer.question} (${offer.detail})`, download, USE_LOCAL_FOLDER);
    if (choice === download) {
      const folder = await this.download(plan);
      if (folder && cur.kind !== 'hub') await this.setModelSetting(formatModelSetting({ entry: (await this.modelToOffer()).entry, repo: plan.repo }));
      return folder;
    }
    if (choice === USE_LOCAL_FOLDER) return this.pickLocalFolder();
    return undefined;
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

  async isDownloaded(model: { folder: string }): Promise<boolean> {
    return (await missingModelFiles(model.folder)).length === 0;
  }

  /** The variants the engine should load for the current model: what the user pinned, else what was downloaded. */
  async variantsToLoad(): Promise<VariantChoice | undefined> {
    const cur = await this.current();
    if (cur.kind !== 'hub') return undefined;
    return cur.model.choice ?? cur.manifest?.variants;
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
   * Downloads a plan with a cancellable progress notification. Free disk space is checked first
   * (DISK_SPACE names the numbers); a second window downloading the same model waits for the first
   * (the folder lock) and says so. Cancelling keeps the `.part` files, so the next download
   * resumes. On failure offers Retry and Show Logs. Returns the folder, or undefined.
   *
   * Proxies: nothing to pass. The extension host patches Node's http/https modules to follow the
   * user's `http.proxy` / `http.proxyStrictSSL` settings (and the system proxy), and the hub uses
   * those modules' default agents. HF_ENDPOINT and HF_TOKEN from the environment are honoured.
   */
  async download(plan: DownloadPlan): Promise<string | undefined> {
    const root = this.modelsRoot();
    const offer = downloadOffer(plan);
    this.log.info(`[models] downloading ${plan.repo}@${plan.revision} (commit ${plan.commit}, ${offer.detail}, ${offer.sizeText}) into ${root}`);
    try {
      const folder = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Downloading ${plan.label} (${offer.sizeText})`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const sub = token.onCancellationRequested(() => abort.abort());
          let shownPercent = 0;
          let lastReport = 0;
          try {
            return await downloadPlan(plan, root, {
              signal: abort.signal,
              envProxy: false, // VS Code's own proxy support already patches http/https here
              onWaitForLock: (holder) => {
                const who = holder ? `process ${holder.pid}` : 'another window';
                this.log.info(`[models] ${plan.label} is being downloaded by ${who}; waiting for it`);
                progress.report({ message: `waiting: ${who} is downloading this model` });
              },
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
            sub.dispose();
          }
        },
      );
      this.log.info(`[models] ${plan.label} ready in ${folder}`);
      return folder;
    } catch (err) {
      if (err instanceof AbortedError) {
        this.log.info(`[models] download of ${plan.label} cancelled; partial files kept in ${root}`);
        void vscode.window.showInformationMessage(
          `Download of ${plan.label} cancelled. The part already downloaded is kept: downloading again resumes where it stopped.`,
        );
        return undefined;
      }
      const what =
        err instanceof EngineError
          ? err.code === 'CHECKSUM'
            ? `a downloaded file is corrupt (checksum mismatch; it was deleted): ${err.message}`
            : err.message
          : `unexpected error: ${(err as Error).message ?? String(err)}`;
      this.log.error(`[models] download of ${plan.label} failed: ${what}`);
      if (err instanceof Error && err.stack && !(err instanceof EngineError)) this.log.error(err.stack);
      const choice = await vscode.window.showErrorMessage(`Could not download ${plan.label}: ${what}`, 'Retry', 'Show Logs');
      if (choice === 'Retry') return this.download(plan);
      if (choice === 'Show Logs') this.log.show(true);
      return undefined;
    }
  }
}

/** The `llava` settings section, for the one write config.ts has no setter for (`llava.model`). */
function llavaSettings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('llava');
}
