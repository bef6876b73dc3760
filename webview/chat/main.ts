// The chat webview (panel and side view share it). A mirror of the host's conversation: it posts
// `ready`, receives a full `init`, then applies incremental messages. It keeps its state with
// vscode.setState so a reload (or the panel serializer after a window reload) can restore it.
// Imports from src/ are types only, plus protocol.ts's dependency-free guards.

import '@vscode-elements/elements/dist/vscode-button/index.js';
import '@vscode-elements/elements/dist/vscode-icon/index.js';
import '@vscode-elements/elements/dist/vscode-checkbox/index.js';
import './chat.css';
import type { ChatImageData, ChatMessage, ConversationSnapshot, HostToWebview, PersistedWebviewState, WebviewToHost } from '../../src/protocol/index';
import { asBytes, isHostToWebview } from '../../src/protocol/index';
import { ImageView, el, iconButton } from './imageView';
import { MessageList } from './messages';
import { Overlay } from './overlay';
import { createEmptyState, createUndoClear } from './emptyState';

interface VsCodeApi {
  postMessage(msg: WebviewToHost): void;
  getState(): unknown;
  setState(state: PersistedWebviewState): void;
}
declare function acquireVsCodeApi(): VsCodeApi;
const vscode = acquireVsCodeApi();

// ---- requests with replies ------------------------------------------------------------------

type Request = Extract<WebviewToHost, { requestId: number }>;
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;
let nextRequestId = 1;
const pending = new Map<number, { resolve(): void; reject(e: Error): void }>();
function request(msg: DistributiveOmit<Request, 'requestId'>): Promise<void> {
  const requestId = nextRequestId++;
  vscode.postMessage({ ...msg, requestId } as Request);
  return new Promise((resolve, reject) => pending.set(requestId, { resolve, reject }));
}
// when this page goes (the panel closes or reloads), whoever waits on a reply is told
window.addEventListener('pagehide', () => {
  for (const p of pending.values()) p.reject(new Error('The chat was closed.'));
  pending.clear();
});

// ---- state ----------------------------------------------------------------------------------

let conversation: ConversationSnapshot = { id: '', title: '', images: [], messages: [], pendingImageIds: [] };
const blobUrls = new Map<string, string>();
let selectedImageId: string | undefined;
let busy = false;
let followActive = false;
/** the image a Describe-region draft is about: its answer's boxes go there */
let draftBoxImageId: string | undefined;

function persist(): void {
  conversation.messages = messages.snapshot();
  vscode.setState({ conversation, followActive });
}
let persistTimer = 0;
function persistSoon(): void {
  if (persistTimer) return;
  persistTimer = window.setTimeout(() => {
    persistTimer = 0;
    persist();
  }, 500);
}

// ---- layout ---------------------------------------------------------------------------------

const app = document.getElementById('app')!;
const surface = document.body.dataset.surface === 'view' ? 'view' : 'panel';

const toolbar = el('header', 'toolbar');
toolbar.setAttribute('role', 'toolbar');
toolbar.setAttribute('aria-label', 'Chat actions');
const follow = document.createElement('vscode-checkbox');
follow.setAttribute('label', 'Follow active image');
follow.title = 'Use the image preview in the active editor as this chat’s image';
follow.addEventListener('change', () => {
  followActive = (follow as unknown as { checked: boolean }).checked;
  vscode.postMessage({ type: 'setFollowActive', on: followActive });
  persist();
});
const spacer = el('span', 'spacer');
toolbar.append(
  ...(surface === 'view' ? [follow] : []),
  spacer,
  iconButton('file-media', 'Attach images…', () => void request({ type: 'pickImages' }).catch(showError)),
  iconButton('clear-all', 'Clear conversation (can be undone)', () => vscode.postMessage({ type: 'clear' })),
);

// Nothing here yet: say what to do, with buttons (the side view follows the active image preview).
const emptyState = createEmptyState(surface, {
  openImage: () => void request({ type: 'pickImages' }).catch(showError),
  getStarted: () => vscode.postMessage({ type: 'openWalkthrough' }),
});

const imageView = new ImageView();
const thumbs = el('div', 'thumbs');
thumbs.setAttribute('role', 'listbox');
thumbs.setAttribute('aria-label', 'Images in this conversation');
imageView.element.append(thumbs);

const messages = new MessageList({
  copy: (text) => vscode.postMessage({ type: 'copy', text }),
  regenerate: () => {
    if (busy) return;
    setBusyNow();
    void request({ type: 'regenerate' }).catch(requestFailed);
  },
  openLink: (href) => vscode.postMessage({ type: 'openLink', href }),
  imageName: (id) => conversation.images.find((i) => i.id === id)?.name ?? 'image',
  action: (messageId, actionId) => request({ type: 'messageAction', messageId, actionId }).catch(showError),
  hoverBox: (messageId, index) => {
    // pointing at coordinates in an older answer (or about another image) brings its boxes up
    if (index !== undefined) {
      const imageId = overlay.activate(messageId);
      if (imageId && imageId !== selectedImageId && blobUrls.has(imageId)) {
        selectedImageId = imageId;
        renderImages();
      }
    }
    overlay.highlight(messageId, index);
  },
});

const overlay = new Overlay(imageView, {
  hover: (messageId, index) => messages.highlightBox(messageId, index),
  find: (imageId, phrase) => request({ type: 'find', imageId, phrase }),
  describeRegion: (imageId, rect) => request({ type: 'describeRegion', imageId, rect }),
  save: (name, bytes) => request({ type: 'saveImage', name, bytes }),
  status: (text) => setStatus(text),
});
imageView.element.prepend(overlay.tools);

const composer = el('footer', 'composer');
const pendingChips = el('div', 'pending-images');
pendingChips.setAttribute('aria-label', 'Images attached to the next question');
const question = el('textarea', 'question');
question.dataset.testid = 'question';
question.rows = 3;
question.placeholder = 'Ask about the image… (Enter to send, Shift+Enter for a new line; paste or Shift+drop images to attach)';
question.setAttribute('aria-label', 'Question');
const send = document.createElement('vscode-button');
send.dataset.testid = 'send';
send.textContent = 'Send';
send.setAttribute('icon', 'send');
send.setAttribute('aria-label', 'Send question');
const stop = document.createElement('vscode-button');
stop.dataset.testid = 'stop';
stop.textContent = 'Stop';
stop.setAttribute('icon', 'debug-stop');
stop.setAttribute('secondary', '');
stop.setAttribute('aria-label', 'Stop generating (Escape)');
const status = el('div', 'status');
status.dataset.testid = 'status';
status.setAttribute('role', 'status');
status.setAttribute('aria-live', 'polite');
const buttons = el('div', 'composer-buttons');
// after Clear: one button brings the conversation back (until something new is added)
const undo = createUndoClear(() => {
  vscode.postMessage({ type: 'undoClear' });
  question.focus();
});
buttons.append(status, undo, stop, send);
composer.append(pendingChips, question, buttons);

app.append(toolbar, imageView.element, emptyState, messages.element, composer);

function renderEmpty(): void {
  emptyState.hidden = conversation.images.length > 0 || messages.snapshot().length > 0;
}

// ---- rendering ------------------------------------------------------------------------------

function addImageBytes(img: ChatImageData): void {
  const bytes = asBytes(img.bytes);
  if (!bytes) {
    console.warn(`llava: image ${img.name} arrived without bytes`);
    return;
  }
  if (!blobUrls.has(img.id)) blobUrls.set(img.id, URL.createObjectURL(new Blob([bytes as BlobPart], { type: img.mime })));
}

function renderImages(): void {
  if (!selectedImageId || !conversation.images.some((i) => i.id === selectedImageId)) {
    selectedImageId = [...conversation.images].reverse().find((i) => blobUrls.has(i.id))?.id;
  }
  const sel = conversation.images.find((i) => i.id === selectedImageId);
  imageView.show(sel ? blobUrls.get(sel.id) : undefined, sel?.name ?? '');
  overlay.show(sel && blobUrls.has(sel.id) ? sel.id : undefined, sel?.name ?? '');
  thumbs.replaceChildren();
  thumbs.hidden = conversation.images.length < 2;
  for (const img of conversation.images) {
    const url = blobUrls.get(img.id);
    const b = el('button', 'thumb');
    b.setAttribute('role', 'option');
    b.setAttribute('aria-selected', String(img.id === selectedImageId));
    b.title = img.name;
    b.setAttribute('aria-label', img.name);
    if (url) {
      const t = el('img');
      t.src = url;
      t.alt = '';
      b.append(t);
    } else b.textContent = img.name;
    b.addEventListener('click', () => {
      selectedImageId = img.id;
      renderImages();
    });
    thumbs.append(b);
  }
  pendingChips.replaceChildren();
  for (const id of conversation.pendingImageIds) {
    const img = conversation.images.find((i) => i.id === id);
    const chip = el('span', 'chip');
    chip.textContent = img?.name ?? 'image';
    chip.append(
      iconButton('close', `Remove ${img?.name ?? 'image'}`, () => vscode.postMessage({ type: 'removePending', imageId: id })),
    );
    pendingChips.append(chip);
  }
  renderEmpty();
}

function renderBusy(): void {
  stop.hidden = !busy;
  send.toggleAttribute('disabled', busy);
  app.classList.toggle('busy', busy);
}

function setStatus(text: string): void {
  status.textContent = text;
}

function showError(err: unknown): void {
  setStatus(err instanceof Error ? err.message : String(err));
}

// ---- host messages --------------------------------------------------------------------------

window.addEventListener('message', (e: MessageEvent) => {
  const msg: unknown = e.data;
  if (!isHostToWebview(msg)) return;
  handle(msg);
});

function handle(msg: HostToWebview): void {
  switch (msg.type) {
    case 'init':
      for (const url of blobUrls.values()) URL.revokeObjectURL(url);
      blobUrls.clear();
      conversation = msg.conversation;
      for (const img of msg.images) addImageBytes(img);
      selectedImageId = undefined;
      followActive = msg.followActive;
      (follow as unknown as { checked: boolean }).checked = followActive;
      busy = msg.busy;
      undo.hidden = true;
      messages.reset(conversation.messages);
      overlay.reset(conversation.messages);
      renderImages();
      renderBusy();
      persist();
      return;
    case 'imageAdded':
      undo.hidden = true;
      addImageBytes(msg.image);
      conversation.images.push({ id: msg.image.id, name: msg.image.name, mime: msg.image.mime, uri: msg.image.uri });
      if (msg.pending) conversation.pendingImageIds.push(msg.image.id);
      if (conversation.images.length === 1) conversation.title = msg.image.name;
      selectedImageId = msg.image.id;
      renderImages();
      persist();
      return;
    case 'imageRemoved':
      conversation.images = conversation.images.filter((i) => i.id !== msg.imageId);
      conversation.pendingImageIds = conversation.pendingImageIds.filter((i) => i !== msg.imageId);
      renderImages();
      persist();
      return;
    case 'messageAdded':
      undo.hidden = true;
      messages.add(msg.message);
      if (msg.message.role === 'user') conversation.pendingImageIds = [];
      renderImages();
      persist();
      return;
    case 'delta':
      messages.delta(msg.messageId, msg.text);
      persistSoon();
      return;
    case 'messageDone':
      messages.done(msg.messageId, msg.text, msg.stats, msg.actions);
      persist();
      return;
    case 'messageError':
      messages.error(msg.messageId, msg.error, msg.actions);
      persist();
      return;
    case 'draft':
      // Describe region: the question is the user's to edit before it is sent
      draftBoxImageId = msg.boxImageId;
      question.value = msg.text;
      question.focus();
      question.setSelectionRange(question.value.length, question.value.length);
      setStatus('Edit the question about the region if you like, then press Enter to ask.');
      return;
    case 'cleared':
      undo.hidden = !msg.canUndo;
      if (msg.canUndo) setStatus('Conversation cleared.');
      return;
    case 'messagesRemoved':
      messages.removeFrom(msg.fromMessageId);
      overlay.reset(messages.snapshot());
      renderEmpty();
      persist();
      return;
    case 'boxes':
      messages.setBoxes(msg.messageId, msg.imageId, msg.boxes);
      overlay.setBoxes(msg.messageId, msg.imageId, msg.boxes);
      persistSoon();
      return;
    case 'busy':
      busy = msg.busy;
      renderBusy();
      return;
    case 'status':
      setStatus(msg.text);
      return;
    case 'followActive':
      followActive = msg.on;
      (follow as unknown as { checked: boolean }).checked = msg.on;
      persist();
      return;
    case 'response': {
      const p = pending.get(msg.requestId);
      pending.delete(msg.requestId);
      if (msg.error) p?.reject(new Error(msg.error));
      else p?.resolve();
      return;
    }
  }
}

// ---- user actions ---------------------------------------------------------------------------

/**
 * Busy from the moment the user asks, not from the host's reply: two quick Enters start one answer.
 * The host's `busy` messages (and `init`) stay the authority.
 */
function setBusyNow(): void {
  busy = true;
  renderBusy();
}

function requestFailed(err: Error): void {
  busy = false;
  renderBusy();
  showError(err);
}

function submit(): void {
  const text = question.value.trim();
  if (!text || busy) return;
  question.value = '';
  setBusyNow();
  const boxImageId = draftBoxImageId;
  draftBoxImageId = undefined;
  undo.hidden = true;
  // errors show in the failed message itself; the status line repeats request-level ones
  void request({ type: 'ask', text, ...(boxImageId ? { boxImageId } : {}) }).catch((err: Error) => {
    if (!question.value) question.value = text;
    requestFailed(err);
  });
}

/** Stop: the answer stops changing at once; the host aborts the engine within one step. */
function stopNow(): void {
  const shown = messages.stopStreaming();
  vscode.postMessage(shown ? { type: 'stop', shown } : { type: 'stop' });
}

send.addEventListener('click', submit);
stop.addEventListener('click', stopNow);
question.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    submit();
  }
});
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && busy) {
    e.preventDefault();
    stopNow();
  }
});

// Paste a screenshot: the clipboard's image file goes to the host as bytes.
document.addEventListener('paste', (e) => {
  const files = [...(e.clipboardData?.files ?? [])].filter((f) => f.type.startsWith('image/'));
  if (!files.length) return;
  e.preventDefault();
  void sendFiles(files);
});

// Drop: VS Code's Explorer gives text/uri-list (hold Shift to drop into a webview); the OS gives files.
document.addEventListener('dragover', (e) => {
  e.preventDefault();
  app.classList.add('dragging');
});
document.addEventListener('dragleave', () => app.classList.remove('dragging'));
document.addEventListener('drop', (e) => {
  e.preventDefault();
  app.classList.remove('dragging');
  const dt = e.dataTransfer;
  if (!dt) return;
  const list = dt.getData('text/uri-list') || dt.getData('application/vnd.code.uri-list');
  if (list) {
    void request({ type: 'dropUris', uris: list.split(/\r?\n/) }).catch(showError);
    return;
  }
  const files = [...dt.files].filter((f) => f.type.startsWith('image/'));
  if (files.length) void sendFiles(files);
});

async function sendFiles(files: File[]): Promise<void> {
  for (const f of files) {
    const bytes = new Uint8Array(await f.arrayBuffer());
    const name = f.name && f.name !== 'image.png' ? f.name : `pasted-${new Date().toISOString().replace(/[:.]/g, '-')}.png`;
    await request({ type: 'addImageBytes', name, mime: f.type, bytes }).catch(showError);
  }
}

// ---- start ----------------------------------------------------------------------------------

// Draw what we had before a reload at once (images come back with the host's `init`).
const saved = vscode.getState() as PersistedWebviewState | undefined;
if (saved?.conversation) {
  conversation = saved.conversation;
  followActive = saved.followActive;
  messages.reset(conversation.messages as ChatMessage[]);
  overlay.reset(conversation.messages);
  renderImages();
}
renderBusy();
renderEmpty();
setStatus('Connecting…');
vscode.postMessage({ type: 'ready' });
question.focus();
// "Focus on Chat View" (and any other way VS Code focuses this webview) lands in the question box,
// unless the user was somewhere inside already.
window.addEventListener('focus', () => {
  if (!document.activeElement || document.activeElement === document.body) question.focus();
});
