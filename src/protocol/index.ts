// The host <-> webview protocol, bundled into both sides: it imports nothing at run time (types from
// core only) and never vscode. Messages for the chat panel and the side view. Discriminated unions on a string
// `type`; actions the webview waits on carry a `requestId` and get exactly one `response`.
// The webview imports this file with `import type` only (plus the guards, which are plain functions
// with no imports), so nothing from the extension host leaks into the browser bundle.
// Image bytes travel as Uint8Array: VS Code's webview postMessage transfers typed arrays without
// base64, and the webview shows them through blob: URLs (no local resource root for the image's folder).

export type Role = 'user' | 'assistant';
export type MessageState = 'streaming' | 'done' | 'error';
export type EngineStateName = 'idle' | 'loading' | 'generating' | 'error' | 'stopped';
export type Surface = 'panel' | 'view';

export interface ChatImageMeta {
  id: string;
  /** file name shown to the user and used in engine error messages */
  name: string;
  /** image/png, image/jpeg, ... (for the blob: URL) */
  mime: string;
  /** where it came from, so a restored conversation can re-read it; absent for pasted images */
  uri?: string;
  /**
   * The user chose "Ask About a Downscaled Copy" after this image was over the size limit: the
   * engine is asked about a smaller copy it makes (the file and these bytes stay as they are).
   */
  downscale?: boolean;
}

export interface ChatImageData extends ChatImageMeta {
  bytes: Uint8Array;
}

export interface AnswerStats {
  newTokens: number;
  tokensPerSecond: number;
  timeToFirstTokenMs: number;
  stopReason: 'eos' | 'max_tokens' | 'aborted';
  provider?: string;
  /** earlier question/answer pairs left out so the conversation fits the model's context window */
  droppedTurns?: number;
  /** images the model saw as a downscaled copy, with the copy's size */
  downscaled?: DownscaledImage[];
}

export interface DownscaledImage {
  name: string;
  width: number;
  height: number;
}

/**
 * The note under an answer about downscaled copies: "asked about a copy of poster.png downscaled to
 * 4,096 × 3,641 px". Dependency-free: the webview shows it, tests check it.
 */
export function downscaleNote(images: readonly DownscaledImage[] | undefined): string | undefined {
  if (!images?.length) return undefined;
  const n = (v: number) => Math.round(v).toLocaleString('en-US');
  const one = (d: DownscaledImage) => `${d.name} downscaled to ${n(d.width)} × ${n(d.height)} px`;
  if (images.length === 1) return `asked about a copy of ${one(images[0])}`;
  return `asked about copies of ${images.map(one).join(', ')}`;
}

/**
 * A box the model wrote in an answer, already mapped onto the original image (pixels after EXIF
 * orientation, not rounded). The host parses and maps; the webview only draws.
 */
export interface AnswerBox {
  /** the label the answer gives the box ('' when none); model text: show it with textContent only */
  phrase: string;
  x: number;
  y: number;
  width: number;
  height: number;
  /** [start, end) of the coordinates in the message text, so the answer can mark them */
  start: number;
  end: number;
}

/** A rectangle on the original image in its pixels (a region the user drew). */
export interface ImageRect {
  x: number;
  y: number;
  width: number;
  height: number;
}

/**
 * A button under a message: what the user can do next (download a model, switch the provider, ...).
 * `id` names the action for the host, which decides what it does; the webview only shows `label`.
 */
export interface MessageAction {
  id: string;
  label: string;
  /** the recommended choice (shown as the primary button) */
  primary?: boolean;
}

export interface ChatMessage {
  id: string;
  role: Role;
  text: string;
  state: MessageState;
  /** images attached to this user turn */
  imageIds: string[];
  /**
   * user: asked about this one image on its own (Find in Image): the model gets this question and the image
   * alone, not the turns before it, so a box does not depend on what was said earlier
   */
  standaloneImageId?: string;
  error?: string;
  stats?: AnswerStats;
  /** assistant: boxes found in the answer so far, drawn over `boxImageId` */
  boxes?: AnswerBox[];
  boxImageId?: string;
  /** assistant: what to do next (a missing model, a failed download, a provider that cannot load) */
  actions?: MessageAction[];
}

/** Everything needed to redraw (and, with image bytes, to resume) a conversation. */
export interface ConversationSnapshot {
  id: string;
  title: string;
  images: ChatImageMeta[];
  messages: ChatMessage[];
  /** attached but not yet sent: they go with the next question */
  pendingImageIds: string[];
}

/** What the webview keeps with vscode.setState and the panel serializer gets back after a reload. */
export interface PersistedWebviewState {
  conversation: ConversationSnapshot;
  followActive: boolean;
}

// ---- host -> webview -------------------------------------------------------------------------

export type HostToWebview =
  | {
      type: 'init';
      surface: Surface;
      conversation: ConversationSnapshot;
      /** bytes for every image in `conversation.images` that could be read */
      images: ChatImageData[];
      followActive: boolean;
      busy: boolean;
    }
  | { type: 'imageAdded'; image: ChatImageData; pending: boolean }
  | { type: 'imageRemoved'; imageId: string }
  | { type: 'messageAdded'; message: ChatMessage }
  | { type: 'delta'; messageId: string; text: string }
  | { type: 'messageDone'; messageId: string; text: string; stats?: AnswerStats; actions?: MessageAction[] }
  | { type: 'messageError'; messageId: string; error: string; actions?: MessageAction[] }
  /** a question prepared by the host (Describe region) for the user to edit and send */
  | { type: 'draft'; text: string; boxImageId?: string }
  /** the conversation was cleared and can be brought back with `undoClear` */
  | { type: 'cleared'; canUndo: boolean }
  /** drop this message and every later one (regenerate) */
  | { type: 'messagesRemoved'; fromMessageId: string }
  | { type: 'busy'; busy: boolean }
  | { type: 'status'; state: EngineStateName; text: string }
  | { type: 'followActive'; on: boolean }
  /** the boxes of an answer (all of them so far: streaming sends a growing list) */
  | { type: 'boxes'; messageId: string; imageId: string; boxes: AnswerBox[] }
  | { type: 'response'; requestId: number; error?: string };

// ---- webview -> host -------------------------------------------------------------------------

export type WebviewToHost =
  | { type: 'ready' }
  /** `boxImageId`: the image the answer's boxes belong to (a Describe-region draft the user edited) */
  | { type: 'ask'; requestId: number; text: string; boxImageId?: string }
  | { type: 'regenerate'; requestId: number }
  /** `shown`: the streaming answer's text length on screen when Stop was pressed (the host keeps that much) */
  | { type: 'stop'; shown?: { messageId: string; shownLength: number } }
  | { type: 'clear' }
  | { type: 'undoClear' }
  /** the empty state's "Get Started": the extension's walkthrough */
  | { type: 'openWalkthrough' }
  /** the user chose one of a message's actions */
  | { type: 'messageAction'; requestId: number; messageId: string; actionId: string }
  /** files dropped from the Explorer (text/uri-list) or the OS */
  | { type: 'dropUris'; requestId: number; uris: string[] }
  /** a pasted screenshot or a dropped file without a URI */
  | { type: 'addImageBytes'; requestId: number; name: string; mime: string; bytes: Uint8Array }
  | { type: 'pickImages'; requestId: number }
  | { type: 'removePending'; imageId: string }
  | { type: 'openLink'; href: string }
  | { type: 'copy'; text: string }
  | { type: 'setFollowActive'; on: boolean }
  /** ask the model where `phrase` is in this image (its own referring-expression prompt) */
  | { type: 'find'; requestId: number; imageId: string; phrase: string }
  /** ask the model about a region the user drew, in original-image pixels */
  | { type: 'describeRegion'; requestId: number; imageId: string; rect: ImageRect }
  /** a PNG of the image with its boxes drawn (made in the webview) to save to a file */
  | { type: 'saveImage'; requestId: number; name: string; bytes: Uint8Array };

// ---- guards ----------------------------------------------------------------------------------
// Messages from the webview are checked before the host acts on them: a webview renders model text
// and could, through a bug, post anything.

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}
const isStr = (v: unknown): v is string => typeof v === 'string';
const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;

/** The largest image the webview may hand over (bytes); larger ones are refused with a message. */
export const MAX_IMAGE_BYTES = 50 * 1024 * 1024;

export function isSnapshot(v: unknown): v is ConversationSnapshot {
  return (
    isObject(v) &&
    isStr(v.id) &&
    isStr(v.title) &&
    Array.isArray(v.images) &&
    v.images.every(
      (i) =>
        isObject(i) &&
        isStr(i.id) &&
        isStr(i.name) &&
        isStr(i.mime) &&
        (i.uri === undefined || isStr(i.uri)) &&
        (i.downscale === undefined || typeof i.downscale === 'boolean'),
    ) &&
    Array.isArray(v.messages) &&
    v.messages.every(
      (m) =>
        isObject(m) &&
        isStr(m.id) &&
        (m.role === 'user' || m.role === 'assistant') &&
        isStr(m.text) &&
        (m.state === 'streaming' || m.state === 'done' || m.state === 'error') &&
        Array.isArray(m.imageIds) &&
        m.imageIds.every(isStr) &&
        (m.standaloneImageId === undefined || isStr(m.standaloneImageId)),
    ) &&
    Array.isArray(v.pendingImageIds) &&
    v.pendingImageIds.every(isStr)
  );
}

export function isPersistedState(v: unknown): v is PersistedWebviewState {
  return isObject(v) && isSnapshot(v.conversation) && typeof v.followActive === 'boolean';
}

export function isWebviewToHost(v: unknown): v is WebviewToHost {
  if (!isObject(v) || !isStr(v.type)) return false;
  switch (v.type) {
    case 'ready':
    case 'clear':
    case 'undoClear':
    case 'openWalkthrough':
      return true;
    case 'stop':
      return (
        v.shown === undefined ||
        (isObject(v.shown) && isStr(v.shown.messageId) && Number.isInteger(v.shown.shownLength) && (v.shown.shownLength as number) >= 0)
      );
    case 'ask':
      return isId(v.requestId) && isStr(v.text) && (v.boxImageId === undefined || isStr(v.boxImageId));
    case 'messageAction':
      return isId(v.requestId) && isStr(v.messageId) && isStr(v.actionId) && v.actionId.length <= 100;
    case 'regenerate':
    case 'pickImages':
      return isId(v.requestId);
    case 'dropUris':
      return isId(v.requestId) && Array.isArray(v.uris) && v.uris.length <= 100 && v.uris.every(isStr);
    case 'addImageBytes':
      return (
        isId(v.requestId) &&
        isStr(v.name) &&
        isStr(v.mime) &&
        v.mime.startsWith('image/') &&
        v.bytes instanceof Uint8Array &&
        v.bytes.byteLength <= MAX_IMAGE_BYTES
      );
    case 'removePending':
      return isStr(v.imageId);
    case 'openLink':
      return isStr(v.href);
    case 'copy':
      return isStr(v.text);
    case 'setFollowActive':
      return typeof v.on === 'boolean';
    case 'find':
      return isId(v.requestId) && isStr(v.imageId) && isStr(v.phrase) && v.phrase.trim().length > 0 && v.phrase.length <= 500;
    case 'describeRegion':
      return isId(v.requestId) && isStr(v.imageId) && isRect(v.rect);
    case 'saveImage':
      return isId(v.requestId) && isStr(v.name) && v.bytes instanceof Uint8Array && v.bytes.byteLength <= MAX_IMAGE_BYTES * 4;
    default:
      return false;
  }
}

const isFiniteNum = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** a rectangle with finite numbers and a positive size */
export function isRect(v: unknown): v is ImageRect {
  return isObject(v) && isFiniteNum(v.x) && isFiniteNum(v.y) && isFiniteNum(v.width) && isFiniteNum(v.height) && v.width > 0 && v.height > 0;
}

export function isActions(v: unknown): v is MessageAction[] {
  return (
    Array.isArray(v) &&
    v.length <= 8 &&
    v.every((a) => isObject(a) && isStr(a.id) && isStr(a.label) && (a.primary === undefined || typeof a.primary === 'boolean'))
  );
}

export function isAnswerBox(v: unknown): v is AnswerBox {
  return (
    isObject(v) &&
    isStr(v.phrase) &&
    isFiniteNum(v.x) &&
    isFiniteNum(v.y) &&
    isFiniteNum(v.width) &&
    isFiniteNum(v.height) &&
    isId(v.start) &&
    isId(v.end) &&
    v.start <= v.end
  );
}

export function isHostToWebview(v: unknown): v is HostToWebview {
  if (!isObject(v) || !isStr(v.type)) return false;
  switch (v.type) {
    case 'init':
      return isSnapshot(v.conversation) && Array.isArray(v.images) && (v.surface === 'panel' || v.surface === 'view');
    case 'imageAdded':
      return isObject(v.image) && asBytes(v.image.bytes) !== undefined;
    case 'imageRemoved':
      return isStr(v.imageId);
    case 'messageAdded':
      return isObject(v.message) && isStr(v.message.id);
    case 'delta':
      return isStr(v.messageId) && isStr(v.text);
    case 'messageDone':
      return isStr(v.messageId) && isStr(v.text) && (v.actions === undefined || isActions(v.actions));
    case 'messageError':
      return isStr(v.messageId) && isStr(v.error) && (v.actions === undefined || isActions(v.actions));
    case 'draft':
      return isStr(v.text) && (v.boxImageId === undefined || isStr(v.boxImageId));
    case 'cleared':
      return typeof v.canUndo === 'boolean';
    case 'messagesRemoved':
      return isStr(v.fromMessageId);
    case 'busy':
      return typeof v.busy === 'boolean';
    case 'status':
      return isStr(v.state) && isStr(v.text);
    case 'followActive':
      return typeof v.on === 'boolean';
    case 'boxes':
      return isStr(v.messageId) && isStr(v.imageId) && Array.isArray(v.boxes) && v.boxes.every(isAnswerBox);
    case 'response':
      return isId(v.requestId) && (v.error === undefined || isStr(v.error));
    default:
      return false;
  }
}

/**
 * Bytes as they arrive in the webview. VS Code transfers typed arrays, but a view into a larger
 * buffer (what readFile returns over a remote connection) may arrive as its whole buffer or as an
 * ArrayBuffer; anything else (a JSON-ish object) is refused.
 */
export function asBytes(v: unknown): Uint8Array | undefined {
  if (v instanceof Uint8Array) return v;
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/**
 * A plain Uint8Array that owns exactly these bytes. VS Code's webview postMessage transfers typed
 * arrays by their constructor's name: a Node Buffer (what workspace.fs.readFile returns in the
 * extension host) is not recognised and goes through its toJSON as `{type:'Buffer', data:[...]}`;
 * a view into a larger buffer would ship the whole buffer. Copy both.
 */
export function standaloneBytes(b: Uint8Array): Uint8Array {
  const plain = Object.getPrototypeOf(b) === Uint8Array.prototype;
  return plain && b.byteOffset === 0 && b.byteLength === b.buffer.byteLength ? b : new Uint8Array(b);
}

/** Longest link the host opens from an answer. */
export const MAX_LINK_LENGTH = 2048;

/** 127.x, 10.x, 172.16-31.x, 192.168.x, 169.254.x, 0.x, localhost, ::1, fc00::/7, fe80::/10 */
function isLocalHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '::' || /^f[cd][0-9a-f]{2}:/.test(h) || /^fe[89ab][0-9a-f]:/.test(h)) return true;
  const m = /^(\d+)\.(\d+)\.\d+\.\d+$/.exec(h);
  if (!m) return false;
  const [a, b] = [Number(m[1]), Number(m[2])];
  return a === 127 || a === 10 || a === 0 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254);
}

/**
 * The host's allow-list for links in model answers (the webview only asks; VS Code then confirms):
 * https and http only (VS Code's "open external website?" confirmation covers those; a mailto: link
 * would open the mail client, prefilled by the model, without one); no user:password part; a host
 * name that is not this machine or the local network (a model's link must not reach a local dev
 * server); no control characters; bounded length.
 */
export function isSafeLink(href: string): boolean {
  if (href.length > MAX_LINK_LENGTH || /[\u0000-\u001f\u007f\s]/.test(href)) return false;
  try {
    const u = new URL(href);
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return false;
    return !!u.hostname && !u.username && !u.password && !isLocalHost(u.hostname);
  } catch {
    return false;
  }
}

/** Image file extensions the extension offers to ask about (mirrors package.json's menu `when`). */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'webp', 'gif', 'bmp', 'tif', 'tiff', 'avif', 'svg'] as const;

export function mimeForName(name: string): string | undefined {
  const dot = name.lastIndexOf('.');
  if (dot < 0) return undefined;
  const ext = name.slice(dot + 1).toLowerCase();
  const map: Record<string, string> = {
    png: 'image/png',
    jpg: 'image/jpeg',
    jpeg: 'image/jpeg',
    webp: 'image/webp',
    gif: 'image/gif',
    bmp: 'image/bmp',
    tif: 'image/tiff',
    tiff: 'image/tiff',
    avif: 'image/avif',
    svg: 'image/svg+xml',
  };
  return map[ext];
}
