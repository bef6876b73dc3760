// The conversation list. User text is shown as text; assistant text is Markdown rendered by
// markdown-it with raw HTML off and then sanitised by DOMPurify, so model output can never inject
// markup or script. Model output is hostile input (issue 14), so on top of that:
// - links are rendered WITHOUT an href (the target is in data-href): VS Code's own webview link handler
//   (which opens any <a href> at once, without our allow-list) has nothing to follow; a click or Enter
//   asks the host, which checks its allow-list and opens through VS Code, with its confirmation;
// - Markdown images become links with their alt text: no <img> (remote fetches, CSP noise) from output;
// - bidi controls (U+202A-202E, U+2066-2069) are shown as visible [U+202E] text and every block is its
//   own bidi context (dir="auto"): an unterminated RLO cannot reverse the lines after it;
// - single line breaks are kept (breaks: true): the model's layout is what the user reads.

import MarkdownIt from 'markdown-it';
import DOMPurify from 'dompurify';
import { downscaleNote, type AnswerBox, type ChatMessage, type MessageAction } from '../../src/protocol/index';
import { el, iconButton } from './imageView';
import { BOX_COLOURS } from './overlay';

const md = new MarkdownIt({ html: false, linkify: true, breaks: true, typographer: false });

/** Explicit bidi embeddings, overrides and isolates: visible as text, never acting. */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

export function neutraliseBidi(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `[U+${c.charCodeAt(0).toString(16).toUpperCase()}]`);
}

// every block opens its own bidi context
const BLOCKS = new Set(['paragraph_open', 'heading_open', 'list_item_open', 'blockquote_open', 'th_open', 'td_open', 'bullet_list_open', 'ordered_list_open']);
md.core.ruler.push('llava_dir_auto', (state) => {
  for (const t of state.tokens) if (BLOCKS.has(t.type)) t.attrSet('dir', 'auto');
});

md.renderer.rules.link_open = (tokens, i) => {
  const href = String(tokens[i].attrGet('href') ?? '');
  const e = md.utils.escapeHtml(href);
  return `<a data-href="${e}" title="${e}" role="link" tabindex="0" class="answer-link">`;
};
md.renderer.rules.image = (tokens, i) => {
  const t = tokens[i];
  const src = md.utils.escapeHtml(String(t.attrGet('src') ?? ''));
  const alt = md.utils.escapeHtml(t.content || String(t.attrGet('src') ?? '') || 'image');
  return `<a data-href="${src}" title="${src}" role="link" tabindex="0" class="answer-link image-link">[image: ${alt}]</a>`;
};

/** Markdown -> HTML before sanitising (no DOM needed: unit-tested directly). */
export function markdownHtml(text: string): string {
  return md.render(neutraliseBidi(text));
}

export function renderMarkdown(text: string): string {
  return DOMPurify.sanitize(markdownHtml(text), {
    USE_PROFILES: { html: true },
    FORBID_TAGS: ['style', 'form', 'input', 'img', 'picture', 'source', 'video', 'audio', 'iframe', 'object', 'embed', 'svg', 'math'],
    FORBID_ATTR: ['href', 'src', 'srcset', 'xlink:href', 'action', 'formaction', 'background', 'poster'],
    ADD_ATTR: ['data-href', 'role', 'tabindex', 'dir'],
  });
}

export interface MessageActions {
  copy(text: string): void;
  regenerate(): void;
  openLink(href: string): void;
  imageName(id: string): string;
  /** pointer over (or focus on) the coordinates of box `index` in an answer; undefined on leave */
  hoverBox(messageId: string, index: number | undefined): void;
  /** one of a message's buttons (download a model, switch the provider, ...); settles when done */
  action(messageId: string, actionId: string): Promise<void>;
}

// Private-use characters mark where a box's coordinates were: Markdown and the sanitiser pass them
// through as text, and the rendered DOM's text nodes are then split around them.
const MARK_OPEN = '\uE000';
const MARK_CLOSE = '\uE001';
const MARK = /\uE000(\d+)\uE001/g;

/** The answer text with each box's coordinate span replaced by a marker (spans are in text order). */
export function markBoxes(text: string, boxes: readonly AnswerBox[]): string {
  let out = '';
  let at = 0;
  boxes.forEach((b, i) => {
    if (b.start < at || b.end > text.length) return; // stale offsets (text changed): leave it as text
    out += text.slice(at, b.start) + MARK_OPEN + i + MARK_CLOSE;
    at = b.end;
  });
  return out + text.slice(at);
}

export class MessageList {
  readonly element: HTMLElement;
  private readonly items = new Map<
    string,
    { root: HTMLElement; body: HTMLElement; meta: HTMLElement; buttons: HTMLElement; msg: ChatMessage }
  >();
  private renderPending = new Set<string>();
  /** answers stopped in the UI -> the text length shown at Stop (what stays, whatever the host sends after) */
  private readonly stopped = new Map<string, number>();
  private frame = 0;

  constructor(private readonly actions: MessageActions) {
    this.element = el('section', 'messages');
    this.element.setAttribute('role', 'log');
    this.element.setAttribute('aria-label', 'Conversation');
    this.element.setAttribute('aria-live', 'polite');
    // Capture phase, stopped here: the click never reaches VS Code's webview link handler (it listens on
    // the window and would open the link itself, without our allow-list). Middle clicks too.
    const open = (e: Event) => {
      const a = (e.target as Element | null)?.closest?.('a');
      if (!a) return;
      e.preventDefault();
      e.stopPropagation();
      const href = a.getAttribute('data-href');
      if (href && e.type !== 'auxclick') this.actions.openLink(href);
    };
    this.element.addEventListener('click', open, true);
    this.element.addEventListener('auxclick', open, true);
    this.element.addEventListener('keydown', (e) => {
      if (e.key !== 'Enter' && e.key !== ' ') return;
      if (!(e.target as Element | null)?.matches?.('a[data-href]')) return;
      open(e);
    });
  }

  reset(messages: readonly ChatMessage[]): void {
    this.items.clear();
    this.element.replaceChildren();
    for (const m of messages) this.add(m);
    this.updateLastAssistant();
  }

  add(m: ChatMessage): void {
    const root = el('article', `message ${m.role}`);
    root.dataset.testid = 'message';
    root.dataset.role = m.role;
    root.dataset.state = m.state;
    root.setAttribute('aria-label', m.role === 'user' ? 'You' : 'LLaVA');
    const head = el('header', 'message-head');
    const who = el('span', 'who');
    who.textContent = m.role === 'user' ? 'You' : 'LLaVA';
    head.append(who);
    if (m.role === 'assistant') {
      const tools = el('span', 'message-tools');
      tools.append(
        iconButton('copy', 'Copy answer', () => this.actions.copy(this.items.get(m.id)?.msg.text ?? '')),
        withClass(iconButton('refresh', 'Regenerate answer', () => this.actions.regenerate()), 'regenerate'),
      );
      head.append(tools);
    }
    const body = el('div', 'message-body');
    const meta = el('footer', 'message-meta');
    const buttons = el('div', 'message-actions');
    buttons.setAttribute('role', 'group');
    buttons.setAttribute('aria-label', 'What to do next');
    root.append(head);
    const alone = m.standaloneImageId;
    if (m.imageIds.length || alone) {
      const att = el('div', 'message-images');
      for (const id of m.imageIds) {
        if (id === alone) continue;
        const chip = el('span', 'chip');
        chip.textContent = this.actions.imageName(id);
        att.append(chip);
      }
      // Find in Image: asked about that image alone, so the answer does not depend on the chat above it
      if (alone) {
        const chip = el('span', 'chip');
        chip.textContent = `${this.actions.imageName(alone)}, on its own`;
        chip.title = 'Asked about this image alone: the model did not see the chat before this question';
        chip.dataset.testid = 'standalone';
        att.append(chip);
      }
      root.append(att);
    }
    root.append(body, meta, buttons);
    this.items.set(m.id, { root, body, meta, buttons, msg: { ...m } });
    this.element.append(root);
    this.paint(m.id);
    this.updateLastAssistant();
    this.scrollToEnd();
  }

  /**
   * Stop pressed: the answer being written stops changing now, before the host confirms (deltas still
   * in flight are not shown; the host's final text follows with `done`).
   */
  stopStreaming(): { messageId: string; shownLength: number } | undefined {
    let shown: { messageId: string; shownLength: number } | undefined;
    for (const [id, it] of this.items) {
      if (it.msg.state !== 'streaming') continue;
      this.stopped.set(id, it.msg.text.length);
      it.root.dataset.state = 'stopping';
      it.root.setAttribute('aria-busy', 'false');
      // a repaint may be pending: show everything received so far, and no more
      this.paint(id);
      shown = { messageId: id, shownLength: it.msg.text.length };
    }
    return shown;
  }

  delta(id: string, text: string): void {
    const it = this.items.get(id);
    if (!it || this.stopped.has(id)) return;
    it.msg.text += text;
    this.schedule(id);
  }

  done(id: string, text: string, stats?: ChatMessage['stats'], actions?: MessageAction[]): void {
    const it = this.items.get(id);
    // an answer that ended on its own while Stop was on its way: still no more than was shown at Stop
    // (the host cuts its copy to the same length when the Stop arrives)
    const shown = this.stopped.get(id);
    this.stopped.delete(id);
    if (!it) return;
    if (shown !== undefined && text.length > shown) text = text.slice(0, shown);
    it.msg = { ...it.msg, text, state: 'done', stats, actions };
    this.paint(id);
  }

  setBoxes(id: string, imageId: string, boxes: AnswerBox[]): void {
    const it = this.items.get(id);
    if (!it) return;
    it.msg = { ...it.msg, boxes, boxImageId: imageId };
    // while streaming the next frame repaints anyway; a finished answer repaints now
    if (it.msg.state === 'streaming') this.schedule(id);
    else this.paint(id);
  }

  /** Marks the coordinates of box `index` of an answer (the pointer is over that box on the image). */
  highlightBox(id: string, index: number | undefined): void {
    for (const e of this.element.querySelectorAll('.box-ref.hover')) e.classList.remove('hover');
    if (index === undefined) return;
    this.items.get(id)?.body.querySelector(`.box-ref[data-index="${index}"]`)?.classList.add('hover');
  }

  error(id: string, error: string, actions?: MessageAction[]): void {
    const it = this.items.get(id);
    if (!it) return;
    it.msg = { ...it.msg, state: 'error', error, actions };
    this.paint(id);
  }

  removeFrom(id: string): void {
    let removing = false;
    for (const [key, it] of [...this.items]) {
      if (key === id) removing = true;
      if (removing) {
        it.root.remove();
        this.items.delete(key);
      }
    }
    this.updateLastAssistant();
  }

  /** The messages as currently shown (for vscode.setState). */
  snapshot(): ChatMessage[] {
    return [...this.items.values()].map((i) => ({ ...i.msg }));
  }

  private schedule(id: string): void {
    // re-render Markdown at most once per frame however fast tokens arrive
    this.renderPending.add(id);
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      for (const pid of this.renderPending) this.paint(pid);
      this.renderPending.clear();
    });
  }

  private paint(id: string): void {
    const it = this.items.get(id);
    if (!it) return;
    const m = it.msg;
    const stick = this.nearEnd();
    const stopping = this.stopped.has(id);
    it.root.dataset.state = stopping ? 'stopping' : m.state;
    it.root.setAttribute('aria-busy', String(m.state === 'streaming' && !stopping));
    if (m.role === 'user') it.body.textContent = neutraliseBidi(m.text);
    else {
      const boxes = m.boxes ?? [];
      it.body.innerHTML =
        renderMarkdown(boxes.length ? markBoxes(m.text, boxes) : m.text) ||
        (m.state === 'streaming'
          ? '<p class="thinking">…</p>'
          : m.state === 'done' && !m.actions?.length
            ? // an answer stopped before its first word says so (a finished one has stats)
              `<p class="thinking">${m.stats ? '(empty answer)' : 'Stopped before any text.'}</p>`
            : '');
      if (boxes.length) this.insertBoxRefs(m.id, it.body, m.text, boxes);
    }
    it.meta.replaceChildren();
    if (m.state === 'error' && m.error) {
      const err = el('div', 'message-error');
      err.setAttribute('role', 'alert');
      // host-written words (with **emphasis**), sanitised like any answer
      err.innerHTML = renderMarkdown(m.error);
      it.meta.append(err);
    } else if (m.stats) {
      const s = m.stats;
      const parts = [`${s.newTokens} ${s.newTokens === 1 ? 'token' : 'tokens'}`];
      // a rate needs at least two tokens (it is measured after the first)
      if (s.newTokens > 1) parts.push(`${s.tokensPerSecond.toFixed(1)} tokens/s`);
      if (s.provider) parts.push(s.provider);
      if (s.stopReason === 'max_tokens') parts.push('stopped at the token limit');
      if (s.stopReason === 'aborted') parts.push('stopped');
      // said in the conversation itself: this answer did not see the whole conversation
      if (s.droppedTurns) parts.push(`${s.droppedTurns} oldest ${s.droppedTurns === 1 ? 'turn' : 'turns'} left out to fit the context window`);
      // the model did not see the full-size image: say so where the answer is read
      const note = downscaleNote(s.downscaled);
      if (note) parts.push(note);
      it.meta.textContent = parts.join(' · ');
    }
    this.paintActions(m.id, it.buttons, m.actions ?? []);
    if (stick) this.scrollToEnd();
  }

  /** The message's buttons; while one runs, all are disabled (a download takes a while). */
  private paintActions(messageId: string, host: HTMLElement, actions: readonly MessageAction[]): void {
    host.replaceChildren();
    host.hidden = actions.length === 0;
    for (const a of actions) {
      const b = document.createElement('vscode-button');
      b.textContent = a.label;
      b.dataset.testid = 'message-action';
      b.dataset.action = a.id;
      if (!a.primary) b.setAttribute('secondary', '');
      b.addEventListener('click', () => {
        if (b.hasAttribute('disabled')) return;
        const all = [...host.children];
        for (const c of all) c.setAttribute('disabled', '');
        void this.actions.action(messageId, a.id).finally(() => {
          for (const c of all) c.removeAttribute('disabled');
        });
      });
      host.append(b);
    }
  }

  /** Replaces the markers with focusable chips showing the original coordinates (as text nodes). */
  private insertBoxRefs(messageId: string, body: HTMLElement, text: string, boxes: readonly AnswerBox[]): void {
    const walker = document.createTreeWalker(body, NodeFilter.SHOW_TEXT);
    const nodes: Text[] = [];
    for (let n = walker.nextNode(); n; n = walker.nextNode()) if ((n.nodeValue ?? '').includes(MARK_OPEN)) nodes.push(n as Text);
    for (const node of nodes) {
      const value = node.nodeValue ?? '';
      const parts: Node[] = [];
      let at = 0;
      for (const m of value.matchAll(MARK)) {
        const i = Number(m[1]);
        const b = boxes[i];
        parts.push(document.createTextNode(value.slice(at, m.index)));
        at = m.index + m[0].length;
        if (!b) continue;
        const chip = el('span', `box-ref c${i % BOX_COLOURS}`);
        chip.dataset.index = String(i);
        chip.dataset.testid = 'box-ref';
        chip.tabIndex = 0;
        chip.textContent = text.slice(b.start, b.end);
        chip.title = b.phrase ? `${b.phrase}: shown on the image` : 'Shown on the image';
        chip.addEventListener('pointerenter', () => this.actions.hoverBox(messageId, i));
        chip.addEventListener('pointerleave', () => this.actions.hoverBox(messageId, undefined));
        chip.addEventListener('focus', () => this.actions.hoverBox(messageId, i));
        chip.addEventListener('blur', () => this.actions.hoverBox(messageId, undefined));
        parts.push(chip);
      }
      parts.push(document.createTextNode(value.slice(at)));
      node.replaceWith(...parts);
    }
  }

  private updateLastAssistant(): void {
    const all = [...this.items.values()];
    all.forEach((it, i) => it.root.classList.toggle('last', i === all.length - 1));
  }

  private nearEnd(): boolean {
    const e = this.element;
    return e.scrollHeight - e.scrollTop - e.clientHeight < 40;
  }

  private scrollToEnd(): void {
    this.element.scrollTop = this.element.scrollHeight;
  }
}

function withClass<T extends HTMLElement>(e: T, c: string): T {
  e.classList.add(c);
  return e;
}
