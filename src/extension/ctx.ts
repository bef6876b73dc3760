// What commands and panels share: the log, the lazy EngineClient and the model store. Two cleanup
// scopes (rust-analyzer's pattern): `extension` lives until deactivate; `engine` holds what belongs
// to one EngineClient and goes with it. Nothing here runs at activation beyond wiring: the engine
// process starts on the first question.

import * as vscode from 'vscode';
import { randomInt } from 'node:crypto';
import * as path from 'node:path';
import { EngineClient, type EngineState } from '../engine-process';
import type { ChatTurn, GenerationStats, ImageGeometry, ImageInput, LoadedModelInfo } from '../core';
import type { LoadParams } from '../engine-process';
import { AbortedError, formatVariantChoice } from '../core';
import { config } from './config';
import { Disposable, disposeAll } from './disposable';
import { EngineStatusBar, PROVIDER_NAMES } from './statusBar';
import { cpuReasonInWords, nvidiaGpuPresent } from './guidance';
import { ModelStore } from './modelStore';
import { RemoteBackend } from './remoteBackend';
import type { GroundingModelSource } from '../grounding';

export interface EngineStatusInfo {
  /** what the user should see: a failed request (one bad image) leaves the engine 'idle', not 'error' */
  state: EngineState;
  /** one line for the webviews' status line */
  text: string;
  model?: string;
  provider?: string;
  /** why the engine runs on the CPU on `auto`, in words (a normal state, not a warning) */
  fallbackReason?: string;
}

export interface AskResult {
  text: string;
  stats: GenerationStats;
  provider: string;
  /** each image of `turns`, in order: how it became the model's input (grounding maps boxes back with it) */
  images?: ImageGeometry[];
}

/** The user declined to download or choose a model: not an error worth a red message. */
export class NoModelError extends Error {
  constructor() {
    super('No model is available. Run "LLaVA: Download Model" or "LLaVA: Select Model".');
    this.name = 'NoModelError';
  }
}

export class Ctx extends Disposable {
  readonly log: vscode.LogOutputChannel;
  /** resolves `llava.model` to a folder, offering a download or a local folder when missing */
  readonly models: ModelStore;
  /** the OpenAI-compatible server used instead of the engine when `llava.backend` is `openai` */
  readonly remote: RemoteBackend;
  private readonly statusBar: EngineStatusBar;
  private _client: EngineClient | undefined;
  private readonly engineScope: vscode.Disposable[] = [];
  private readonly statusEmitter = this._register(new vscode.EventEmitter<EngineStatusInfo>());
  /** engine state for status lines (webviews, status bar) */
  readonly onDidChangeEngineStatus = this.statusEmitter.event;
  private _status: EngineStatusInfo = { state: 'stopped', text: 'Checking the model…' };
  /** whether the configured model is on disk (undefined until checked): no "Ready" before it is */
  private modelAvailable: boolean | undefined;
  /** why the configured model could not load (a provider or model error), until settings change */
  private modelProblem: string | undefined;
  /** the fallback reason already written to the log in words (once per load, not per status change) */
  private loggedFallback: string | undefined;

  constructor(readonly context: vscode.ExtensionContext, log: vscode.LogOutputChannel) {
    super();
    this.log = log;
    this.models = new ModelStore(context, log);
    this.remote = new RemoteBackend(context.secrets, log);
    this.statusBar = this._register(new EngineStatusBar());
    this._register(
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (config.affects(e, 'idleUnloadMinutes')) this._client?.setIdleTimeout(config.idleUnloadMinutes() * 60_000);
        if (config.affectsEngine(e) && this._client?.modelInfo) {
          // the next question carries the new LoadParams and the engine reloads; free memory now
          this.log.info('engine settings changed: unloading the current model');
          void this._client.unload().catch(() => undefined);
        }
        if (config.affectsEngine(e)) {
          this.modelProblem = undefined;
          void this.refreshModelAvailability();
        }
      }),
    );
    this._register({ dispose: () => disposeAll(this.engineScope) });
    // Show the configured model at once (cheap: no engine); whether it is downloaded follows from a
    // few stat calls. The engine starts on the first question.
    this.publishStatus();
    void this.refreshModelAvailability();
  }

  /** Re-reads whether the configured model is on disk (after a download, a folder pick, a setting change). */
  async refreshModelAvailability(): Promise<void> {
    try {
      this.modelAvailable = (await this.models.resolveModelDir()) !== undefined;
    } catch {
      this.modelAvailable = false;
    }
    if (!this._isDisposed) this.publishStatus();
  }

  /** A question failed because the model cannot load (provider, model files): shown until settings change. */
  setModelProblem(problem: string | undefined): void {
    this.modelProblem = problem;
    this.publishStatus();
  }

  /** Where the box format of the model that answers comes from: the remote model's, or the configured local one's. */
  get groundingSource(): GroundingModelSource {
    return this.remote.enabled ? this.remote.groundingSource(() => this.models.catalog()) : this.models;
  }

  get extensionUri(): vscode.Uri {
    return this.context.extensionUri;
  }

  get engineStatus(): EngineStatusInfo {
    return this._status;
  }

  /** The engine client, created (not started: the process forks on the first request) on first use. */
  get client(): EngineClient {
    if (this._client) return this._client;
    const client = new EngineClient({
      modulePath: vscode.Uri.joinPath(this.context.extensionUri, 'dist', 'engine.js').fsPath,
      idleTimeoutMs: config.idleUnloadMinutes() * 60_000,
    });
    this._client = client;
    this.engineScope.push(
      client.onLog((line) => this.log.info(line)),
      client.onDidChangeState(() => this.publishStatus()),
      client.onDidChangeModel(() => this.publishStatus()),
      { dispose: () => client.dispose() },
    );
    return client;
  }

  /** The engine process id, for tests (undefined when no process runs). */
  enginePid(): number | undefined {
    return this._client?.pid;
  }

  killEngine(): void {
    this._client?.kill();
  }

  /**
   * The one path from a question to an answer, shared by the chat UI and the test API: resolve the
   * model (offering a download), then stream through the engine process (or the remote backend).
   * `seed`: when sampling (temperature > 0) each answer gets a fresh random seed unless one is given, so
   * that Regenerate gives another answer (the engine's default seed is fixed, for reproducible runs).
   */
  async ask(
    turns: ChatTurn[],
    opts: { signal?: AbortSignal; onDelta?: (text: string) => void; seed?: number; offerDownload?: boolean } = {},
  ): Promise<AskResult> {
    if (this.remote.enabled) return this.remote.ask(turns, opts);
    const params = await this.loadParams(opts.offerDownload ?? true);
    if (opts.signal?.aborted) throw new AbortedError();
    const temperature = config.temperature();
    let result: { text: string; stats: GenerationStats; images?: ImageGeometry[] } | undefined;
    for await (const ev of this.client.generate(params, turns, {
      maxNewTokens: config.maxNewTokens(),
      temperature: temperature > 0 ? temperature : undefined,
      seed: temperature > 0 ? (opts.seed ?? randomInt(0x7fffffff)) : undefined,
      signal: opts.signal,
      // a long conversation leaves out its oldest turns (never the current question and its
      // images) rather than overflow the model's context window; when even the question does not
      // fit, the engine refuses with CONTEXT_OVERFLOW, whose message the chat shows
      fitContext: 'dropOldestTurns',
    })) {
      if (ev.type === 'delta') opts.onDelta?.(ev.text);
      else result = { text: ev.text, stats: ev.stats, images: ev.images };
    }
    if (!result) throw new Error('the engine ended without an answer');
    if (this.modelProblem) this.setModelProblem(undefined);
    const s = result.stats;
    if (s.droppedTurns) {
      const note = `This conversation is longer than the model's context window${this.client.modelInfo?.contextLength ? ` (${this.client.modelInfo.contextLength} tokens)` : ''}: its ${s.droppedTurns} oldest turns were left out of this answer.`;
      // the chat says so under the answer (its stats footer); callers without one have the log
      this.log.info(`answer: ${note}`);
    }
    this.log.info(
      `answer: ${s.newTokens} tokens, ${s.stopReason}, first token ${Math.round(s.timeToFirstTokenMs)} ms, ` +
        `${s.decodeTokensPerSecond.toFixed(1)} tokens/s`,
    );
    return { ...result, provider: this.client.modelInfo?.provider ?? 'unknown' };
  }

  /**
   * What the engine loads for the configured model. When it is missing: offers a download in a
   * notification (`offerDownload`, for commands), else throws NoModelError at once (the chat asks inline).
   */
  async loadParams(offerDownload = true): Promise<LoadParams> {
    const modelDir = offerDownload ? await this.models.ensureModel() : await this.models.resolveModelDir();
    if (!modelDir) throw new NoModelError();
    if (this.modelAvailable !== true) void this.refreshModelAvailability();
    // a Hub model loads what the user pinned (`id:vision=fp16,decoder=q4`), else what was downloaded;
    // a local folder lets the engine choose among its files
    const variant = await this.models.variantsToLoad();
    return { modelDir, provider: config.executionProvider(), threads: config.threads(), variant, prefixCacheMB: config.conversationCacheMB() };
  }

  /** How the configured model preprocesses `image` (for grounding before any answer exists). */
  async imageGeometry(image: ImageInput, signal?: AbortSignal): Promise<ImageGeometry> {
    if (this.remote.enabled) return this.remote.geometry(image);
    return this.client.geometry(await this.loadParams(), image, signal);
  }

  private configuredModelName(): string {
    return this.models.configuredName();
  }

  private publishStatus(): void {
    const c = this._client;
    const info: LoadedModelInfo | undefined = c?.modelInfo;
    const model = info ? this.models.displayName(info.dir) : undefined;
    const raw = c?.state ?? 'stopped';
    // The client reports 'error' after any failed request; while its process lives the engine is
    // fine (one unreadable image is that question's error, shown in its message, not the engine's).
    const processAlive = c?.pid !== undefined;
    let state: EngineState = raw === 'error' && processAlive ? (info ? 'idle' : 'stopped') : raw;
    const busy = state === 'loading' || state === 'generating';
    if (this.modelProblem && !busy) state = 'error';
    const provider = info ? providerName(info.provider) : undefined;
    const cpuReason = info?.fallbackReason ? cpuReasonInWords(info.fallbackReason, nvidiaGpuPresent(), info.provider) : undefined;
    if (info?.fallbackReason && this.loggedFallback !== info.fallbackReason) {
      this.loggedFallback = info.fallbackReason;
      this.log.info(`running on the ${provider}: ${cpuReason}`);
    }
    const notDownloaded = !info && this.modelAvailable === false;
    const text =
      state === 'loading'
        ? 'Loading the model…'
        : state === 'generating'
          ? `Generating on ${provider ?? '…'}`
          : state === 'error'
            ? this.modelProblem
              ? `Model not loaded: ${this.modelProblem}`
              : 'The engine stopped unexpectedly; it starts again with the next question'
            : info
              ? `${model} (${formatVariantChoice(info.variants)}) on ${provider}`
              : notDownloaded
                ? 'No model yet: ask a question to choose one'
                : this.modelAvailable === undefined
                  ? 'Checking the model…'
                  : c
                    ? 'Ready (the model loads again on the next question)'
                    : 'Ready (the model loads on the first question)';
    this._status = { state, text, model, provider: info?.provider, fallbackReason: cpuReason };
    this.statusBar.update({
      state,
      model: model ?? this.configuredModelName(),
      provider: info?.provider,
      cpuReason,
      notDownloaded,
      problem: state === 'error' ? (this.modelProblem ?? 'engine stopped') : undefined,
      detail: info
        ? `${formatVariantChoice(info.variants)}${info.contextLength ? ` · context ${info.contextLength} tokens` : ''} · loaded in ${Math.round(info.loadMs)} ms`
        : undefined,
    });
    this.statusEmitter.fire(this._status);
  }
}

function providerName(p: string): string {
  return PROVIDER_NAMES[p] ?? p;
}
