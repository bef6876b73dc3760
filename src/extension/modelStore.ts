// The model store: turns the `llava.model` setting into a folder the engine can load, and when
// there is none, asks the user (download a catalog model, or point at a local folder). The pure
// decisions live in modelLocation.ts; this file owns the dialogs, the download progress and the
// settings writes.

import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { config } from './config';
import { downloadFailureGuidance, noModelGuidance, type NoModelSituation } from './guidance';
import { plainText, runSettingAction } from './guidanceActions';
import {
  BUILTIN_MODEL_DESCRIPTION,
  BUILTIN_MODEL_LABEL,
  builtinModelFolder,
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
/** ms between progress notifications: often enough to look alive, rarely enough to stay cheap */
const PROGRESS_INTERVAL_MS = 250;

/** The model a download would fetch when none can be loaded, and the words for offering it. */
export interface MissingModel {
  model: ResolvedHubModel;
  label: string;
  /** the setting names something else (or nothing usable): point it at the download once done */
  setsSetting: boolean;
  situation: NoModelSituation;
}

/** What `llava.model` currently points at, as the pickers and the status bar describe it. */
export type CurrentModel =
  /** the model shipped inside the extension (`llava.model` = `builtin`); `problem` when this package lacks it */
  | { kind: 'builtin'; path: string; label: string; problem?: string }
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

  /** The bundled CLI the host runs conversions with, in a child process (never loaded into the host). */
  cliPath(): string {
    return path.join(this.context.extensionUri.fsPath, 'dist', 'cli.js');
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
    if (ref.kind === 'builtin') {
      const dir = this.builtinFolder();
      const problem = (await checkLocalModelFolder(dir))
        ? `\`builtin\` names the ${BUILTIN_MODEL_LABEL}, but this copy of the extension does not include it (${dir} is missing or incomplete).`
        : undefined;
      return { kind: 'builtin', path: dir, label: BUILTIN_MODEL_LABEL, ...(problem ? { problem } : {}) };
    }
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
    if (cur.kind === 'folder' || cur.kind === 'builtin') return cur.problem ? undefined : cur.path;
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
   * variant per part, the commit). One network call (two when config.json is not here yet); throws DownloadError
   * (code DOWNLOAD) offline.
   */
  async offer(model?: ResolvedHubModel, signal?: AbortSignal): Promise<{ plan: DownloadPlan; offer: DownloadOffer }> {
    const m = model ?? (await this.modelToOffer());
    const provider = config.executionProvider();
    const plan = await planFromHub(
      { repo: m.repo, revision: m.revision, entry: m.entry, choice: m.choice, folder: m.folder },
      { provider: provider === 'auto' || provider === 'cpu' ? 'cpu' : 'gpu', envProxy: false, signal },
    );
    return { plan, offer: downloadOffer(plan) };
  }

  /** Downloaded models under the models root, with size on disk, variant map and commit. */
  async downloaded(): Promise<DownloadedModel[]> {
    return listDownloadedModels(this.modelsRoot());
  }

  /**
   * What a download would fetch when the setting names nothing usable yet (the model the setting
   * names, else the catalog's default), with the words for the inline choice; undefined when the
   * configured model can be loaded. No UI, no network: the exact size is known once the Hub is
   * listed (offer()), so the inline choice names the model and its licence.
   */
  async missingModel(): Promise<MissingModel | undefined> {
    const cur = await this.current();
    if ((cur.kind === 'folder' || cur.kind === 'builtin') && !cur.problem) return undefined;
    if (cur.kind === 'hub' && cur.missing.length === 0) return undefined;
    const model = await this.modelToOffer();
    const label = model.entry?.label ?? model.repo;
    const builtin = await this.builtinModel();
    return {
      model,
      label,
      setsSetting: cur.kind !== 'hub',
      situation: {
        offer: { label, licence: model.entry?.licence },
        problem: cur.kind === 'hub' ? undefined : cur.problem,
        builtin: builtin ? { label: BUILTIN_MODEL_LABEL, description: BUILTIN_MODEL_DESCRIPTION } : undefined,
      },
    };
  }

  /** Where the built-in model lives in this copy of the extension (`<extension>/models/builtin`), present or not. */
  builtinFolder(): string {
    return builtinModelFolder(this.context.extensionUri.fsPath);
  }

  /**
   * The model folder shipped inside the extension (`models/builtin/`, Hub layout), when the package
   * carries one: the inline choice then offers it as the no-download option.
   */
  async builtinModel(): Promise<string | undefined> {
    const dir = this.builtinFolder();
    return (await checkLocalModelFolder(dir)) ? undefined : dir;
  }

  /**
   * Downloads what missingModel() names and points the setting at it: lists the Hub, chooses each
   * part's files, reports the exact size (`onPlan`), then downloads with progress; `signal` (the
   * chat's Stop) cancels. Throws on failure (AbortedError when stopped, the hub's typed errors).
   */
  async downloadMissing(signal?: AbortSignal, onPlan?: (offer: DownloadOffer) => void): Promise<string | undefined> {
    const missing = await this.missingModel();
    if (!missing) return this.resolveModelDir();
    // Stop also ends a listing that hangs (a Hub that accepts and never answers)
    const { plan, offer } = await this.offer(missing.model, signal);
    onPlan?.(offer);
    const folder = await this.downloadWithProgress(plan, signal);
    if (missing.setsSetting) await this.setModelSetting(formatModelSetting(missing.model, missing.model.choice));
    return folder;
  }

  /**
   * The folder to load; when there is none, offers Download / Use Local Folder… in a notification
   * (for commands outside the chat, which asks inline). Download lists the Hub and confirms with
   * the exact size, licence and variants first. Undefined when the user dismisses, cancels or a
   * download fails.
   */
  async ensureModel(): Promise<string | undefined> {
    const dir = await this.resolveModelDir();
    if (dir) return dir;
    const missing = await this.missingModel();
    if (!missing) return this.resolveModelDir();
    const g = noModelGuidance(missing.situation);
    this.log.info(`[models] ${plainText(g.text)}`);
    const picked = await vscode.window.showInformationMessage(plainText(g.text), ...g.actions.map((a) => a.label));
    const choice = g.actions.find((a) => a.label === picked);
    if (!choice) return undefined;
    if (choice.id === 'localFolder') return this.pickLocalFolder();
    if (choice.id === 'builtin') return this.useBuiltin();
    if (choice.id !== 'download') return undefined;
    let offered: { plan: DownloadPlan; offer: DownloadOffer };
    try {
      offered = await this.offer(missing.model);
    } catch (err) {
      return this.downloadFailed(err, missing.label, () => this.ensureModel());
    }
    // free space is checked before the offer, so "Download" is never a button that cannot work
    const short = await diskSpaceProblem(offered.plan, this.modelsRoot()).catch(() => undefined);
    if (short) return this.downloadFailed(short, missing.label, () => this.ensureModel());
    const go = await vscode.window.showInformationMessage(offered.offer.question, { modal: true, detail: offered.offer.detail }, 'Download');
    if (go !== 'Download') return undefined;
    const folder = await this.download(offered.plan);
    if (folder && missing.setsSetting) await this.setModelSetting(formatModelSetting(missing.model, missing.model.choice));
    return folder;
  }

  /**
   * Points `llava.model` at the built-in model: the reserved word `builtin`, never the folder's path
   * (the extension's folder name carries its version, so a path breaks at the next update).
   * Undefined (and the setting untouched) when this package has no built-in model.
   */
  async useBuiltin(): Promise<string | undefined> {
    const dir = await this.builtinModel();
    if (dir) await this.setModelSetting(formatModelSetting({ kind: 'builtin' }));
    return dir;
  }

  /** The name to show for a loaded model folder: the built-in model's label, else the folder's name. */
  displayName(dir: string): string {
    return path.resolve(dir) === path.resolve(this.builtinFolder()) ? BUILTIN_MODEL_LABEL : path.basename(dir);
  }

  /** The name to show for what `llava.model` says before anything loads. */
  configuredName(): string {
    const setting = config.model();
    return parseModelSetting(setting, os.homedir()).kind === 'builtin' ? BUILTIN_MODEL_LABEL : path.basename(setting);
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
   * Downloads a plan with a cancellable progress notification and, on failure, says why in words
   * with what to do next (Retry / Proxy Settings / Use Local Folder…). Cancelling keeps the `.part`
   * files, so the next download resumes. Returns the folder, or undefined when cancelled or failed.
   */
  async download(plan: DownloadPlan): Promise<string | undefined> {
    try {
      return await this.downloadWithProgress(plan);
    } catch (err) {
      if (err instanceof AbortedError) {
        void vscode.window.showInformationMessage(`Download of ${plan.label} cancelled. Downloading again resumes where it stopped.`);
        return undefined;
      }
      return this.downloadFailed(err, plan.label, () => this.download(plan));
    }
  }

  /** A failed download (or Hub listing) in words, with its buttons; `retry` runs again on Retry. */
  private async downloadFailed(err: unknown, label: string, retry: () => Promise<string | undefined>): Promise<string | undefined> {
    const g = downloadFailureGuidance(err, label);
    const choice = await vscode.window.showErrorMessage(plainText(g.text), ...g.actions.map((a) => a.label));
    const action = g.actions.find((a) => a.label === choice);
    if (!action) return undefined;
    if (action.id === 'download') return retry();
    if (action.id === 'localFolder') return this.pickLocalFolder();
    await runSettingAction(action.id, this.log);
    return undefined;
  }

  /**
   * The download itself, with a cancellable progress notification; `signal` (the chat's Stop)
   * cancels it too. Free disk space is checked before the first byte (DISK_SPACE names the
   * numbers); a second window downloading the same model waits for the first (the folder lock) and
   * says so. Throws AbortedError when cancelled, the hub's typed errors when it fails (the
   * technical detail goes to the log here; callers word it with guidance.ts).
   *
   * Proxies: nothing to pass. The extension host patches Node's http/https modules to follow the
   * user's `http.proxy` / `http.proxyStrictSSL` settings (and the system proxy), and the hub uses
   * those modules' default agents. HF_ENDPOINT and HF_TOKEN from the environment are honoured.
   */
  async downloadWithProgress(plan: DownloadPlan, signal?: AbortSignal): Promise<string> {
    const root = this.modelsRoot();
    const offer = downloadOffer(plan);
    this.log.info(`[models] downloading ${plan.repo}@${plan.revision} (commit ${plan.commit}, ${offer.detail}, ${offer.sizeText}) into ${root}`);
    try {
      const folder = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Downloading ${plan.label} (${offer.sizeText})`, cancellable: true },
        async (progress, token) => {
          const abort = new AbortController();
          const subs = [token.onCancellationRequested(() => abort.abort())];
          const onStop = () => abort.abort();
          signal?.addEventListener('abort', onStop, { once: true });
          if (signal?.aborted) abort.abort();
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
            subs.forEach((s) => s.dispose());
            signal?.removeEventListener('abort', onStop);
          }
        },
      );
      this.log.info(`[models] ${plan.label} ready in ${folder}`);
      return folder;
    } catch (err) {
      if (err instanceof AbortedError) {
        this.log.info(`[models] download of ${plan.label} cancelled; what was downloaded is kept in ${root}`);
        throw err;
      }
      const what =
        err instanceof EngineError
          ? err.code === 'CHECKSUM'
            ? `a downloaded file is corrupt (checksum mismatch; it was deleted): ${err.message}`
            : err.message
          : `unexpected error: ${(err as Error).message ?? String(err)}`;
      this.log.error(`[models] download of ${plan.label} failed: ${what}`);
      if (err instanceof Error && err.stack && !(err instanceof EngineError)) this.log.error(err.stack);
      throw err;
    }
  }
}

/** The `llava` settings section, for the one write config.ts has no setter for (`llava.model`). */
function llavaSettings(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration('llava');
}
