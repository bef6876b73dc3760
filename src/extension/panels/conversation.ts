// One conversation as data: images (with their bytes), messages, and the images attached to the
// next question. No vscode import: it is plain state with the rules for turning itself into the
// engine's ChatTurn[] (each user turn carries the images sent with it, in order).

import type { ChatTurn, ImageGeometry } from '../../core';
import type {
  AnswerBox,
  AnswerStats,
  ChatImageData,
  ChatImageMeta,
  ChatMessage,
  ConversationSnapshot,
  DownscaledImage,
  MessageAction,
} from '../../protocol';
import { newId } from '../ids';

export class Conversation {
  private snap: ConversationSnapshot;
  private readonly bytes = new Map<string, Uint8Array>();
  /** how the model last preprocessed each image (from the engine; not persisted: a reload re-learns it) */
  private readonly geometries = new Map<string, ImageGeometry>();

  constructor(snapshot?: ConversationSnapshot, images: ChatImageData[] = []) {
    this.snap = snapshot
      ? structuredClone(snapshot)
      : { id: newId('c'), title: 'New chat', images: [], messages: [], pendingImageIds: [] };
    for (const i of images) this.bytes.set(i.id, i.bytes);
    // a reload in the middle of an answer leaves it streaming forever: mark it interrupted
    for (const m of this.snap.messages)
      if (m.state === 'streaming') {
        m.state = 'error';
        m.error = 'Interrupted (the window was reloaded).';
      }
  }

  get id(): string {
    return this.snap.id;
  }
  get title(): string {
    return this.snap.title;
  }
  get messages(): readonly ChatMessage[] {
    return this.snap.messages;
  }
  get pendingImageIds(): readonly string[] {
    return this.snap.pendingImageIds;
  }

  snapshot(): ConversationSnapshot {
    return structuredClone(this.snap);
  }

  /** the images whose bytes are in memory, for the webview */
  imageData(): ChatImageData[] {
    return this.snap.images.flatMap((m) => {
      const b = this.bytes.get(m.id);
      return b ? [{ ...m, bytes: b }] : [];
    });
  }

  /** the image with this URI is already attached to the next question */
  isPendingUri(uri: string): boolean {
    return this.snap.images.some((i) => i.uri === uri && this.snap.pendingImageIds.includes(i.id));
  }

  /** the first image's URI: what a conversation that follows the active image is about */
  firstImageUri(): string | undefined {
    return this.snap.images[0]?.uri;
  }

  /** Attaches an image to the next question. The first image names the conversation. */
  addImage(image: ChatImageData): ChatImageData {
    const meta: ChatImageMeta = { id: image.id, name: image.name, mime: image.mime, uri: image.uri };
    this.snap.images.push(meta);
    this.bytes.set(image.id, image.bytes);
    this.snap.pendingImageIds.push(image.id);
    if (this.snap.images.length === 1) this.snap.title = image.name;
    return image;
  }

  removePending(imageId: string): boolean {
    const i = this.snap.pendingImageIds.indexOf(imageId);
    if (i < 0) return false;
    this.snap.pendingImageIds.splice(i, 1);
    this.snap.images = this.snap.images.filter((m) => m.id !== imageId);
    this.bytes.delete(imageId);
    this.geometries.delete(imageId);
    return true;
  }

  /**
   * The user's question takes every pending image with it. `standaloneImageId`: a question about that image
   * alone (Find in Image); the engine then sees only it (toTurns).
   */
  addUserMessage(text: string, opts: { standaloneImageId?: string } = {}): ChatMessage {
    const m: ChatMessage = { id: newId('m'), role: 'user', text, state: 'done', imageIds: [...this.snap.pendingImageIds] };
    if (opts.standaloneImageId) m.standaloneImageId = opts.standaloneImageId;
    this.snap.pendingImageIds = [];
    this.snap.messages.push(m);
    return m;
  }

  startAssistant(): ChatMessage {
    const m: ChatMessage = { id: newId('m'), role: 'assistant', text: '', state: 'streaming', imageIds: [] };
    this.snap.messages.push(m);
    return m;
  }

  appendDelta(messageId: string, text: string): void {
    const m = this.find(messageId);
    if (m) m.text += text;
  }

  /** `actions`: what the user can do next (an answer that is guidance, e.g. "a model is needed") */
  finish(messageId: string, text: string, stats?: AnswerStats, actions?: MessageAction[]): void {
    const m = this.find(messageId);
    if (!m) return;
    m.text = text;
    m.state = 'done';
    m.stats = stats;
    if (actions?.length) m.actions = actions;
    else delete m.actions;
  }

  fail(messageId: string, error: string, actions?: MessageAction[]): void {
    const m = this.find(messageId);
    if (!m) return;
    m.state = 'error';
    m.error = error;
    if (actions?.length) m.actions = actions;
    else delete m.actions;
  }

  /**
   * Guidance answers (no model, a failed download) are not the model's words: the engine never
   * sees them (toTurns() leaves them out) and the next answer replaces them.
   */
  isGuidance(messageId: string): boolean {
    return !!this.find(messageId)?.actions?.length;
  }

  /** The image an answer's boxes go on, known before any box (Find, Describe region). */
  setBoxTarget(messageId: string, imageId: string): void {
    const m = this.find(messageId);
    if (m) m.boxImageId = imageId;
  }

  /** For regenerate: the last assistant answer, or undefined when the last message is not one. */
  lastAssistant(): ChatMessage | undefined {
    const last = this.snap.messages[this.snap.messages.length - 1];
    return last?.role === 'assistant' ? last : undefined;
  }

  /** Drops a message and everything after it. */
  removeFrom(messageId: string): boolean {
    const i = this.snap.messages.findIndex((m) => m.id === messageId);
    if (i < 0) return false;
    this.snap.messages.splice(i);
    return true;
  }

  /**
   * The conversation as the engine sees it, up to and including the last user message: failed or
   * streaming answers are left out (the model should not see its own half answers), and a user turn
   * whose image bytes are gone (a pasted image after a reload) is sent without them. When the last user
   * message is a standalone question (Find in Image), it is the only turn, with its one image.
   */
  toTurns(): ChatTurn[] {
    const alone = this.standaloneQuestion();
    if (alone) {
      const image = this.imageInput(alone.imageId);
      return [image ? { role: 'user', text: alone.message.text, images: [image] } : { role: 'user', text: alone.message.text }];
    }
    const turns: ChatTurn[] = [];
    for (const m of this.snap.messages) {
      if (m.role === 'assistant') {
        if (m.state === 'done' && !m.actions?.length) turns.push({ role: 'assistant', text: m.text });
        continue;
      }
      const images = m.imageIds.flatMap((id) => {
        const b = this.bytes.get(id);
        const meta = this.snap.images.find((i) => i.id === id);
        return b && meta ? [imageInputOf(b, meta)] : [];
      });
      turns.push(images.length ? { role: 'user', text: m.text, images } : { role: 'user', text: m.text });
    }
    return turns;
  }

  /**
   * The ids of the images toTurns() sends, in the same order: the done event's geometries are
   * parallel to this list.
   */
  turnImageIds(): string[] {
    const alone = this.standaloneQuestion();
    if (alone) return this.imageInput(alone.imageId) ? [alone.imageId] : [];
    return this.snap.messages.flatMap((m) =>
      m.role === 'user' ? m.imageIds.filter((id) => this.bytes.has(id) && this.snap.images.some((i) => i.id === id)) : [],
    );
  }

  /** The last user message, when it asks about one image on its own. */
  private standaloneQuestion(): { message: ChatMessage; imageId: string } | undefined {
    const last = this.snap.messages.findLast((m) => m.role === 'user');
    return last?.standaloneImageId ? { message: last, imageId: last.standaloneImageId } : undefined;
  }

  hasImage(imageId: string): boolean {
    return this.snap.images.some((i) => i.id === imageId);
  }

  imageInput(imageId: string): { bytes: Uint8Array; name: string; downscale?: boolean } | undefined {
    const b = this.bytes.get(imageId);
    const meta = this.snap.images.find((i) => i.id === imageId);
    return b && meta ? imageInputOf(b, meta) : undefined;
  }

  imageName(imageId: string): string | undefined {
    return this.snap.images.find((i) => i.id === imageId)?.name;
  }

  /**
   * "Ask About a Downscaled Copy": from now on the engine gets `downscale` with every image the
   * conversation sends. The engine shrinks only those over its limits (the others are decoded as they
   * are), so the follow-ups keep working too. Returns the ids marked.
   */
  allowDownscale(): string[] {
    const ids = [...new Set(this.turnImageIds())];
    for (const id of ids) {
      const meta = this.snap.images.find((i) => i.id === id);
      if (meta) meta.downscale = true;
      this.geometries.delete(id);
    }
    return ids;
  }

  geometry(imageId: string | undefined): ImageGeometry | undefined {
    return imageId === undefined ? undefined : this.geometries.get(imageId);
  }

  setGeometry(imageId: string, g: ImageGeometry): void {
    this.geometries.set(imageId, g);
  }

  setBoxes(messageId: string, imageId: string, boxes: AnswerBox[]): void {
    const m = this.find(messageId);
    if (!m) return;
    m.boxes = boxes;
    m.boxImageId = imageId;
  }

  /** Brings back what clear() forgot (Undo in the chat). */
  restore(snapshot: ConversationSnapshot, images: readonly ChatImageData[]): void {
    this.snap = structuredClone(snapshot);
    this.bytes.clear();
    this.geometries.clear();
    for (const i of images) this.bytes.set(i.id, i.bytes);
  }

  /** Nothing to lose: no messages and no images. */
  get isEmpty(): boolean {
    return this.snap.messages.length === 0 && this.snap.images.length === 0;
  }

  /** Forget messages and images; a following conversation starts afresh. */
  clear(): void {
    this.snap = { id: newId('c'), title: 'New chat', images: [], messages: [], pendingImageIds: [] };
    this.bytes.clear();
    this.geometries.clear();
  }

  /**
   * The images the model saw as downscaled copies (the engine's geometries, parallel to `imageIds`,
   * say so), for the note under the answer.
   */
  downscaledImages(imageIds: readonly string[], geometries: readonly ImageGeometry[] | undefined): { downscaled?: DownscaledImage[] } {
    if (!geometries || geometries.length !== imageIds.length) return {};
    const list = geometries.flatMap((g, i) =>
      g.downscaledTo ? [{ name: this.imageName(imageIds[i]) ?? 'image', width: g.downscaledTo.width, height: g.downscaledTo.height }] : [],
    );
    return list.length ? { downscaled: list } : {};
  }

  private find(id: string): ChatMessage | undefined {
    return this.snap.messages.find((m) => m.id === id);
  }
}

function imageInputOf(bytes: Uint8Array, meta: ChatImageMeta): { bytes: Uint8Array; name: string; downscale?: boolean } {
  return meta.downscale ? { bytes, name: meta.name, downscale: true } : { bytes, name: meta.name };
}
