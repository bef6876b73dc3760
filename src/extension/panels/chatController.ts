// The host side of one chat webview (panel or side view): it owns the Conversation, answers the
// webview's messages, streams answers from the engine and keeps the webview in sync. The webview is
// a mirror: on every `ready` (first load, or a reload after being hidden) it gets a full `init`.

import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { NoModelError } from '../ctx';
import { AbortedError } from '../../core';
import {
  IMAGE_EXTENSIONS,
  isSafeLink,
  isWebviewToHost,
  type ChatImageData,
  type HostToWebview,
  type Surface,
  type WebviewToHost,
} from '../../protocol';
import {
  StreamingBoxes,
  answerBoxes,
  boxTarget,
  describeRegionQuestion,
  findQuestion,
  DEFAULT_GROUNDING,
  type GroundingSpec,
} from '../../grounding';
import { groundingForCurrentModel } from '../../grounding';
import type { ImageGeometry } from '../../core';
import type { AnswerBox, ConversationSnapshot, ImageRect } from '../../protocol';
import { askFailureGuidance, noModelGuidance, nvidiaGpuPresent } from '../guidance';
import { finishWithGuidance, runGuidanceButton, type GuidanceHost } from './chatGuidance';
import { config, remoteConfig } from '../config';
import { Conversation } from './conversation';
import { DeltaCoalescer } from './deltaCoalescer';
import { parseUris, saveImageWithBoxes } from './chatFiles';
import { newId } from '../ids';
import { MAX_IMAGES_PER_ATTACH, readImage, type ReadImageOptions } from '../images';
import { Disposable } from '../disposable';

/** contributes.walkthroughs in package.json: `<publisher>.<name>#<id>` */
export const WALKTHROUGH_ID = 'llava-vscode.llava-vscode#llava.gettingStarted';

export class ChatController extends Disposable {
  private ready = false;
  private abort: AbortController | undefined;
  /** what the webview showed of the answer when Stop was pressed: that is the answer kept */
  private stoppedAt: { messageId: string; shownLength: number } | undefined;
  /** what Clear removed, until Undo or the next change */
  private cleared: { snapshot: ConversationSnapshot; images: ChatImageData[] } | undefined;
  private readonly titleEmitter = this._register(new vscode.EventEmitter<string>());
  /** the conversation's title changed (the panel shows it) */
  readonly onDidChangeTitle = this.titleEmitter.event;
  private readonly followEmitter = this._register(new vscode.EventEmitter<boolean>());
  readonly onDidChangeFollowActive = this.followEmitter.event;

  /** what the guidance buttons (chatGuidance.ts) may do in this chat */
  private readonly guidance: GuidanceHost;

  constructor(
    private readonly webview: vscode.Webview,
    private readonly surface: Surface,
    private readonly ctx: Ctx,
    private conversation: Conversation = new Conversation(),
    private _followActive = false,
  ) {
    super();
    this.guidance = {
      ctx,
      conversation: () => this.conversation,
      busy: () => this.busy,
      post: (m) => this.post(m),
      beginWork: () => {
        const abort = new AbortController();
        this.abort = abort;
        this.post({ type: 'busy', busy: true });
        return {
          signal: abort.signal,
          end: () => {
            if (this.abort === abort) this.abort = undefined;
            this.post({ type: 'busy', busy: this.busy });
          },
        };
      },
      answer: (boxImageId) => this.answer(boxImageId),
    };
    this._register(webview.onDidReceiveMessage((m) => this.onMessage(m)));
    this._register(
      ctx.onDidChangeEngineStatus((s) => this.post({ type: 'status', state: s.state, text: s.text })),
    );
    // pending work stops with the webview: an answer nobody can see is wasted engine time
    this._register({ dispose: () => this.abort?.abort() });
  }

  get followActive(): boolean {
    return this._followActive;
  }
  get busy(): boolean {
    return this.abort !== undefined;
  }
  get title(): string {
    return this.conversation.title;
  }
  get current(): Conversation {
    return this.conversation;
  }

  /**
   * Adds images to the next question (from a command, a drop, a picker). `untrusted`: the URIs came
   * from the webview (a drop): only workspace files are read (see images.ts); at most
   * MAX_IMAGES_PER_ATTACH at once.
   */
  async attach(uris: readonly vscode.Uri[], opts: ReadImageOptions = {}): Promise<void> {
    const errors: string[] = [];
    if (uris.length > MAX_IMAGES_PER_ATTACH) {
      errors.push(`${uris.length} images at once: only the first ${MAX_IMAGES_PER_ATTACH} are attached.`);
      uris = uris.slice(0, MAX_IMAGES_PER_ATTACH);
    }
    for (const uri of uris) {
      try {
        if (this.conversation.isPendingUri(uri.toString())) continue;
        this.addImage(await readImage(uri, opts));
      } catch (err) {
        errors.push(err instanceof Error ? err.message : String(err));
      }
    }
    if (errors.length) throw new Error(errors.join('\n'));
  }

  /** Shows another conversation (the side view following the active image). */
  replaceConversation(c: Conversation): void {
    if (c === this.conversation) return;
    // an answer in progress finishes into its own conversation (answer() checks which one is shown)
    this.conversation = c;
    this.titleEmitter.fire(c.title);
    this.sendInit();
  }

  setFollowActive(on: boolean): void {
    if (on === this._followActive) return;
    this._followActive = on;
    this.post({ type: 'followActive', on });
    this.followEmitter.fire(on);
  }

  /**
   * Asks a question as if typed in the webview (used by commands). `boxImageId`: the image the
   * answer's boxes belong to (Find / Describe region), else the conversation's latest image.
   * `standalone`: the model gets this question about `boxImageId` alone, not the conversation before it.
   */
  async ask(text: string, opts: { boxImageId?: string; standalone?: boolean } = {}): Promise<void> {
    if (this.busy) throw new Error('An answer is still being generated. Stop it first.');
    const user = this.conversation.addUserMessage(text, opts.standalone && opts.boxImageId ? { standaloneImageId: opts.boxImageId } : {});
    this.post({ type: 'messageAdded', message: user });
    await this.answer(opts.boxImageId);
  }

  /** The image shown first (the latest one): what Find in Image asks about when not told. */
  defaultImageId(): string | undefined {
    return this.conversation.snapshot().images.at(-1)?.id;
  }

  /**
   * Find in Image: the model's referring-expression prompt for `phrase`, asked about the image on its own
   * (as referring expressions are evaluated: one question, one image), so the box
   * does not depend on the chat before it; the answer's box is drawn.
   */
  async find(phrase: string, imageId = this.defaultImageId()): Promise<void> {
    if (!imageId || !this.conversation.hasImage(imageId)) throw new Error('Attach an image first: Find looks for things in an image.');
    if (!phrase.trim()) throw new Error('Type what to find.');
    const spec = await this.grounding();
    await this.ask(findQuestion(spec, phrase), { boxImageId: imageId, standalone: true });
  }

  /**
   * Describe region: writes the model's region question (the region in its frame) into the question
   * box for the user to edit and send; the answer's boxes then go on this image.
   */
  async describeRegion(imageId: string, rect: ImageRect): Promise<void> {
    if (this.busy) throw new Error('An answer is still being generated. Stop it first.');
    const input = this.conversation.imageInput(imageId);
    if (!input) throw new Error('That image is no longer in this conversation.');
    const spec = await this.grounding();
    // the region goes into the prompt in the model's frame, which depends on how it preprocesses
    let g = this.conversation.geometry(imageId);
    if (!g) {
      g = await this.ctx.imageGeometry(input);
      this.conversation.setGeometry(imageId, g);
    }
    this.post({ type: 'draft', text: describeRegionQuestion(spec, rect, g), boxImageId: imageId });
  }

  /**
   * Test hook (e2e overlay test): shows a question and a known answer about `imageId` as if the
   * model had written it, with the geometry the engine would report. Nothing runs in the engine.
   */
  injectAnswer(question: string, answer: string, imageId: string, geometry: ImageGeometry, frame = DEFAULT_GROUNDING.frame): void {
    const user = this.conversation.addUserMessage(question);
    this.post({ type: 'messageAdded', message: user });
    const msg = this.conversation.startAssistant();
    this.post({ type: 'messageAdded', message: msg });
    this.conversation.setGeometry(imageId, geometry);
    this.conversation.finish(msg.id, answer);
    this.post({ type: 'messageDone', messageId: msg.id, text: answer });
    this.publishBoxes(this.conversation, msg.id, imageId, answerBoxes(answer, frame, geometry));
  }

  /** the image added last (tests find their image by it) */
  lastImageId(): string | undefined {
    return this.defaultImageId();
  }

  private async grounding(): Promise<GroundingSpec> {
    try {
      return await groundingForCurrentModel(this.ctx.groundingSource);
    } catch (err) {
      this.ctx.log.warn(`chat: grounding spec unavailable (${err instanceof Error ? err.message : String(err)}); using LLaVA-1.5's`);
      return DEFAULT_GROUNDING;
    }
  }

  private publishBoxes(conversation: Conversation, messageId: string, imageId: string, boxes: AnswerBox[]): void {
    conversation.setBoxes(messageId, imageId, boxes);
    if (conversation === this.conversation) this.post({ type: 'boxes', messageId, imageId, boxes });
  }

  // ---- webview messages ---------------------------------------------------------------------

  private onMessage(raw: unknown): void {
    if (!isWebviewToHost(raw)) {
      this.ctx.log.warn(`chat: ignored a malformed webview message ${JSON.stringify(raw)?.slice(0, 200)}`);
      return;
    }
    void this.handle(raw);
  }

  private async handle(msg: WebviewToHost): Promise<void> {
    const reply = async (requestId: number, work: () => Promise<unknown>) => {
      try {
        await work();
        this.post({ type: 'response', requestId });
      } catch (err) {
        this.post({ type: 'response', requestId, error: err instanceof Error ? err.message : String(err) });
      }
    };
    switch (msg.type) {
      case 'ready':
        this.ready = true;
        this.sendInit();
        return;
      case 'ask': {
        const boxImageId = msg.boxImageId && this.conversation.hasImage(msg.boxImageId) ? msg.boxImageId : undefined;
        return reply(msg.requestId, () => this.ask(msg.text.trim(), { boxImageId }));
      }
      case 'messageAction':
        return reply(msg.requestId, () => runGuidanceButton(this.guidance, msg.messageId, msg.actionId));
      case 'regenerate':
        return reply(msg.requestId, () => this.regenerate());
      case 'stop':
        this.stoppedAt = msg.shown;
        if (this.abort) this.abort.abort();
        // the answer ended before the Stop arrived: keep what the webview showed at Stop, as it does
        else if (msg.shown) this.cutStoppedAnswer(msg.shown.messageId, msg.shown.shownLength);
        return;
      case 'clear': {
        this.abort?.abort();
        const keep = this.conversation.isEmpty ? undefined : { snapshot: this.conversation.snapshot(), images: this.conversation.imageData() };
        this.conversation.clear();
        this.cleared = keep;
        this.titleEmitter.fire(this.conversation.title);
        this.sendInit();
        this.post({ type: 'cleared', canUndo: !!keep });
        return;
      }
      case 'openWalkthrough':
        void vscode.commands.executeCommand('workbench.action.openWalkthrough', WALKTHROUGH_ID, false);
        return;
      case 'undoClear':
        // only onto the empty conversation Clear left: anything added since would be lost
        if (!this.cleared || this.busy || !this.conversation.isEmpty) return;
        this.conversation.restore(this.cleared.snapshot, this.cleared.images);
        this.cleared = undefined;
        this.titleEmitter.fire(this.conversation.title);
        this.sendInit();
        return;
      case 'dropUris':
        return reply(msg.requestId, () => this.attach(parseUris(msg.uris), { untrusted: true }));
      case 'addImageBytes':
        return reply(msg.requestId, async () => {
          this.addImage({ id: newId('i'), name: msg.name || 'pasted image', mime: msg.mime, bytes: msg.bytes });
        });
      case 'pickImages':
        return reply(msg.requestId, async () => {
          const picked = await vscode.window.showOpenDialog({
            canSelectMany: true,
            openLabel: 'Attach',
            filters: { Images: [...IMAGE_EXTENSIONS] },
          });
          if (picked) await this.attach(picked);
        });
      case 'removePending':
        if (this.conversation.removePending(msg.imageId)) this.post({ type: 'imageRemoved', imageId: msg.imageId });
        return;
      case 'openLink':
        // the webview only asks (its links have no href); the host decides, then VS Code confirms
        if (isSafeLink(msg.href)) void vscode.env.openExternal(vscode.Uri.parse(msg.href, true));
        else {
          this.ctx.log.warn(`chat: refused to open ${JSON.stringify(msg.href.slice(0, 300))}`);
          void vscode.window.showWarningMessage('LLaVA: that link was not opened (only web links to other hosts are).');
        }
        return;
      case 'copy':
        await vscode.env.clipboard.writeText(msg.text);
        return;
      case 'setFollowActive':
        this.setFollowActive(msg.on);
        return;
      case 'find':
        return reply(msg.requestId, () => this.find(msg.phrase, msg.imageId));
      case 'describeRegion':
        return reply(msg.requestId, () => this.describeRegion(msg.imageId, msg.rect));
      case 'saveImage':
        return reply(msg.requestId, () => saveImageWithBoxes(this.ctx.log, msg.name, msg.bytes));
    }
  }

  // ---- answering ----------------------------------------------------------------------------

  private async regenerate(): Promise<void> {
    if (this.busy) throw new Error('An answer is still being generated.');
    const last = this.conversation.lastAssistant();
    if (!last) throw new Error('There is no answer to regenerate.');
    this.conversation.removeFrom(last.id);
    this.post({ type: 'messagesRemoved', fromMessageId: last.id });
    await this.answer(last.boxImageId);
  }

  private async answer(boxImageId?: string): Promise<void> {
    // busy before the first await: a second Enter (or Regenerate) arriving meanwhile is refused
    const abort = new AbortController();
    this.abort = abort;
    this.stoppedAt = undefined;
    this.post({ type: 'busy', busy: true });
    const turns = this.conversation.toTurns();
    const conversation = this.conversation;
    // the engine's geometries come back parallel to these ids; boxes go on one of them
    const imageIds = conversation.turnImageIds();
    const target = boxTarget(imageIds, boxImageId);
    const msg = conversation.startAssistant();
    if (boxImageId && target === boxImageId) conversation.setBoxTarget(msg.id, boxImageId);
    this.post({ type: 'messageAdded', message: msg });
    // posts for a conversation that is no longer shown would land in the wrong one
    const visible = () => conversation === this.conversation;
    // one post per ~30 ms, not per token; after Stop nothing more is shown or kept
    const deltas = new DeltaCoalescer((text) => {
      if (visible()) this.post({ type: 'delta', messageId: msg.id, text });
    });
    abort.signal.addEventListener('abort', () => deltas.discard(), { once: true });
    // Stop ends the turn at once whatever the engine is doing (loading a model, generating): the
    // request is cancelled and whatever it still sends is dropped.
    const stopped = new Promise<undefined>((resolve) => abort.signal.addEventListener('abort', () => resolve(undefined), { once: true }));
    try {
      // No model yet: the choice goes into the conversation and the turn ends now.
      const offer = await this.ctx.models.missingModel().catch(() => undefined);
      if (abort.signal.aborted) throw new AbortedError();
      if (offer) {
        finishWithGuidance(this.guidance, conversation, msg.id, noModelGuidance(offer.situation), 'done');
        return;
      }
      const spec = await this.grounding();
      // boxes appear while streaming when this image's geometry is already known (an earlier answer)
      const streaming = new StreamingBoxes(spec.frame, conversation.geometry(target));
      const asking = this.ctx.ask(turns, {
        signal: abort.signal,
        offerDownload: false,
        onDelta: (text) => {
          if (abort.signal.aborted) return;
          conversation.appendDelta(msg.id, text);
          deltas.push(text);
          const boxes = target ? streaming.push(text) : undefined;
          if (boxes && target) this.publishBoxes(conversation, msg.id, target, boxes);
        },
      });
      // a stopped turn's request may still end (or fail) later: nobody waits for it
      asking.catch(() => undefined);
      const r = await Promise.race([asking, stopped]);
      if (!r) throw new AbortedError();
      deltas.flush();
      if (r.images && r.images.length === imageIds.length) r.images.forEach((g, i) => conversation.setGeometry(imageIds[i], g));
      else if (r.images) this.ctx.log.warn(`chat: the engine reported ${r.images.length} image geometries for ${imageIds.length} images; boxes not drawn`);
      const s = r.stats;
      const stats = {
        newTokens: s.newTokens,
        tokensPerSecond: s.decodeTokensPerSecond,
        timeToFirstTokenMs: s.timeToFirstTokenMs,
        stopReason: s.stopReason,
        provider: r.provider,
        ...(s.droppedTurns ? { droppedTurns: s.droppedTurns } : {}),
        ...conversation.downscaledImages(imageIds, r.images),
      };
      // stopped: the answer is what was shown when Stop was pressed, not what the engine wrote after
      const text = abort.signal.aborted ? this.stoppedText(conversation, msg.id) : r.text;
      conversation.finish(msg.id, text, stats);
      if (visible()) this.post({ type: 'messageDone', messageId: msg.id, text, stats });
      const g = conversation.geometry(target);
      if (target && g) this.publishBoxes(conversation, msg.id, target, answerBoxes(text, spec.frame, g));
    } catch (err) {
      deltas.discard();
      const partial = this.stoppedText(conversation, msg.id);
      if (err instanceof AbortedError || abort.signal.aborted) {
        // a stopped answer keeps what was written so far
        conversation.finish(msg.id, partial);
        if (visible()) this.post({ type: 'messageDone', messageId: msg.id, text: partial });
        return;
      }
      if (err instanceof NoModelError) {
        // the model went away between the check and the question (a setting changed meanwhile)
        const offer = await this.ctx.models.missingModel().catch(() => undefined);
        if (offer) return finishWithGuidance(this.guidance, conversation, msg.id, noModelGuidance(offer.situation), 'done');
      }
      // Said once, in the answer's place: the request itself succeeds, so no status line repeats it.
      const text = err instanceof Error ? err.message : String(err);
      this.ctx.log.error(`chat: ${err instanceof Error ? (err.stack ?? text) : text}`);
      // the panel shows the image, and the local engine can ask about a smaller copy of it
      const offerDownscale = remoteConfig.backend() === 'local' && imageIds.length > 0;
      const g = askFailureGuidance(err, config.executionProvider(), nvidiaGpuPresent(), { offerDownscale });
      if (g.modelProblem) this.ctx.setModelProblem(g.modelProblem);
      finishWithGuidance(this.guidance, conversation, msg.id, g, 'error');
    } finally {
      if (this.abort === abort) this.abort = undefined;
      this.post({ type: 'busy', busy: this.busy });
    }
  }

  /** Cuts a finished answer to what was shown when Stop was pressed (a Stop that arrived just after the end). */
  private cutStoppedAnswer(messageId: string, shownLength: number): void {
    const m = this.conversation.messages.find((x) => x.id === messageId);
    if (!m || m.role !== 'assistant' || m.state !== 'done' || m.text.length <= shownLength) return;
    const text = m.text.slice(0, shownLength);
    const stats = m.stats ? { ...m.stats, stopReason: 'aborted' as const } : undefined;
    this.conversation.finish(messageId, text, stats);
    this.post({ type: 'messageDone', messageId, text, stats });
  }

  /** A stopped answer's text: what the webview showed at Stop when it said so, else what arrived. */
  private stoppedText(conversation: Conversation, messageId: string): string {
    const text = conversation.messages.find((m) => m.id === messageId)?.text ?? '';
    const at = this.stoppedAt?.messageId === messageId ? this.stoppedAt.shownLength : undefined;
    return at !== undefined && at <= text.length ? text.slice(0, at) : text;
  }

  // ---- to the webview -----------------------------------------------------------------------

  private addImage(image: ChatImageData): void {
    const first = this.conversation.title === 'New chat';
    this.conversation.addImage(image);
    if (first) this.titleEmitter.fire(this.conversation.title);
    this.post({ type: 'imageAdded', image, pending: true });
  }

  private sendInit(): void {
    if (!this.ready) return;
    const st = this.ctx.engineStatus;
    this.post({
      type: 'init',
      surface: this.surface,
      conversation: this.conversation.snapshot(),
      images: this.conversation.imageData(),
      followActive: this._followActive,
      busy: this.busy,
    });
    this.post({ type: 'status', state: st.state, text: st.text });
  }

  /**
   * Before `ready` nothing is sent: the webview would drop it. The `init` sent on `ready` carries
   * everything that happened meanwhile, which also covers a hidden webview's lost messages.
   */
  private post(msg: HostToWebview): void {
    if (!this.ready || this._isDisposed) return;
    void this.webview.postMessage(msg).then(undefined, () => undefined);
  }
}
