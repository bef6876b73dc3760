// Boxes from the model's answers, drawn over the image: SVG rectangles in the image's own pixels
// (the overlay's viewBox is the image's natural size, so zoom never moves them off their objects),
// HTML labels positioned in percent of the stage (constant text size at every zoom), hover linked
// to the coordinates in the answer, a toggle, Find…, Describe region (drag, or the keyboard), and
// Copy / Save image with boxes (drawn on a canvas here; the host writes the file).
// Labels are model text: they are set with textContent only, never as markup.

import type { AnswerBox, ChatMessage, ImageRect } from '../../src/protocol/index';
import { el, iconButton, type ImageView } from './imageView';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** colour classes c0..c5 map to --vscode-charts-* in chat.css */
export const BOX_COLOURS = 6;
/** keyboard region: one arrow press moves or resizes by this fraction of the image */
const KEY_STEP = 0.02;

export interface OverlayHooks {
  /** hovering (or focusing) a drawn box; index undefined when the pointer leaves */
  hover(messageId: string, index: number | undefined): void;
  find(imageId: string, phrase: string): Promise<void>;
  describeRegion(imageId: string, rect: ImageRect): Promise<void>;
  save(name: string, png: Uint8Array): Promise<void>;
  status(text: string): void;
}

interface Drawn {
  imageId: string;
  boxes: AnswerBox[];
}

export class Overlay {
  readonly tools: HTMLElement;
  private readonly labels: HTMLElement;
  private readonly byMessage = new Map<string, Drawn>();
  /** the answer whose boxes are shown, per image (the latest, or the one the user pointed at) */
  private readonly activeByImage = new Map<string, string>();
  private imageId: string | undefined;
  private imageName = 'image';
  private hidden = false;
  private region: { mode: boolean; rect?: ImageRect; drag?: { x: number; y: number } } = { mode: false };
  private readonly toggleButton: HTMLElement;
  private readonly regionButton: HTMLElement;
  private readonly findInput: HTMLInputElement;

  constructor(
    private readonly view: ImageView,
    private readonly hooks: OverlayHooks,
  ) {
    this.labels = el('div', 'box-labels');
    this.labels.setAttribute('aria-hidden', 'true');
    view.stage.append(this.labels);
    view.onLayout(() => this.paint());

    this.tools = el('div', 'image-tools');
    this.tools.setAttribute('role', 'toolbar');
    this.tools.setAttribute('aria-label', 'Boxes');
    this.findInput = el('input', 'find-input');
    this.findInput.type = 'text';
    this.findInput.placeholder = 'Find in image…';
    this.findInput.setAttribute('aria-label', 'Find in image: what to look for');
    this.findInput.dataset.testid = 'find';
    this.findInput.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.isComposing) {
        e.preventDefault();
        this.runFind();
      }
    });
    this.toggleButton = iconButton('eye', 'Hide boxes', () => this.setHidden(!this.hidden));
    this.toggleButton.dataset.testid = 'toggle-boxes';
    this.regionButton = iconButton('inspect', 'Describe a region: drag over the image (or use the arrow keys, Enter to ask)', () =>
      this.setRegionMode(!this.region.mode),
    );
    this.regionButton.dataset.testid = 'describe-region';
    this.tools.append(
      this.findInput,
      iconButton('search', 'Find in image', () => this.runFind()),
      this.regionButton,
      this.toggleButton,
      iconButton('copy', 'Copy image with boxes', () => void this.copyImage()),
      iconButton('save', 'Save image with boxes…', () => void this.saveImage()),
    );

    this.wireRegionSelection();
  }

  /** Rebuilds from messages (init, restore, regenerate). */
  reset(messages: readonly ChatMessage[]): void {
    this.byMessage.clear();
    this.activeByImage.clear();
    for (const m of messages) if (m.boxes?.length && m.boxImageId) this.setBoxes(m.id, m.boxImageId, m.boxes, false);
    this.paint();
  }

  setBoxes(messageId: string, imageId: string, boxes: AnswerBox[], repaint = true): void {
    this.byMessage.set(messageId, { imageId, boxes });
    // a newer answer with boxes takes over the image; an answer that lost its boxes gives it back
    if (boxes.length) this.activeByImage.set(imageId, messageId);
    else if (this.activeByImage.get(imageId) === messageId) {
      const other = [...this.byMessage].reverse().find(([, d]) => d.imageId === imageId && d.boxes.length);
      if (other) this.activeByImage.set(imageId, other[0]);
      else this.activeByImage.delete(imageId);
    }
    if (repaint) this.paint();
  }

  /** The image now shown (undefined: none). */
  show(imageId: string | undefined, name: string): void {
    this.imageId = imageId;
    this.imageName = name || 'image';
    this.tools.hidden = imageId === undefined;
    this.setRegionMode(false);
    this.paint();
  }

  /** Makes this answer's boxes the ones drawn on its image; returns that image's id. */
  activate(messageId: string): string | undefined {
    const d = this.byMessage.get(messageId);
    if (!d) return undefined;
    this.activeByImage.set(d.imageId, messageId);
    this.paint();
    return d.imageId;
  }

  /** Highlights box `index` of an answer (hovering its coordinates in the text), or none. */
  highlight(messageId: string, index: number | undefined): void {
    for (const e of this.view.overlay.querySelectorAll('.box.hover')) e.classList.remove('hover');
    for (const e of this.labels.querySelectorAll('.box-label.hover')) e.classList.remove('hover');
    if (index === undefined || this.activeByImage.get(this.imageId ?? '') !== messageId) return;
    this.view.overlay.querySelector(`.box[data-index="${index}"]`)?.classList.add('hover');
    this.labels.querySelector(`.box-label[data-index="${index}"]`)?.classList.add('hover');
  }

  /** Boxes on the shown image, for export and tests. */
  current(): { messageId: string; boxes: AnswerBox[] } | undefined {
    const id = this.imageId && this.activeByImage.get(this.imageId);
    const d = id ? this.byMessage.get(id) : undefined;
    return id && d ? { messageId: id, boxes: d.boxes } : undefined;
  }

  // ---- drawing ------------------------------------------------------------------------------

  private paint(): void {
    const svg = this.view.overlay;
    svg.replaceChildren();
    this.labels.replaceChildren();
    const { width: W, height: H } = this.view.naturalSize();
    const cur = this.current();
    this.view.element.classList.toggle('has-boxes', !!cur?.boxes.length);
    if (cur && W && H && !this.hidden) {
      cur.boxes.forEach((b, i) => {
        const r = document.createElementNS(SVG_NS, 'rect');
        r.setAttribute('x', String(b.x));
        r.setAttribute('y', String(b.y));
        r.setAttribute('width', String(b.width));
        r.setAttribute('height', String(b.height));
        r.setAttribute('vector-effect', 'non-scaling-stroke');
        r.setAttribute('class', `box c${i % BOX_COLOURS}`);
        r.dataset.index = String(i);
        r.dataset.testid = 'box';
        const title = document.createElementNS(SVG_NS, 'title');
        title.textContent = b.phrase || `Box ${i + 1}`;
        r.append(title);
        r.addEventListener('pointerenter', () => this.hover(cur.messageId, i, true));
        r.addEventListener('pointerleave', () => this.hover(cur.messageId, undefined, true));
        svg.append(r);

        const label = el('span', `box-label c${i % BOX_COLOURS}`);
        label.dataset.index = String(i);
        label.dataset.testid = 'box-label';
        label.textContent = b.phrase || `${i + 1}`;
        // boxes on the right half get right-aligned labels, so they do not run off the image
        if (b.x / W > 0.5) label.style.right = `${(1 - (b.x + b.width) / W) * 100}%`;
        else label.style.left = `${(b.x / W) * 100}%`;
        label.style.top = `${(b.y / H) * 100}%`;
        // a box at the top edge gets its label inside, where it stays visible
        if (b.y / H < 0.04) label.classList.add('inside');
        this.labels.append(label);
      });
    }
    if (this.region.rect && W && H) {
      const r = document.createElementNS(SVG_NS, 'rect');
      const q = this.region.rect;
      r.setAttribute('x', String(q.x));
      r.setAttribute('y', String(q.y));
      r.setAttribute('width', String(q.width));
      r.setAttribute('height', String(q.height));
      r.setAttribute('vector-effect', 'non-scaling-stroke');
      r.setAttribute('class', 'region');
      r.dataset.testid = 'region';
      svg.append(r);
    }
  }

  private hover(messageId: string, index: number | undefined, fromImage: boolean): void {
    this.highlight(messageId, index);
    if (fromImage) this.hooks.hover(messageId, index);
  }

  private setHidden(hidden: boolean): void {
    this.hidden = hidden;
    this.toggleButton.setAttribute('name', hidden ? 'eye-closed' : 'eye');
    const label = hidden ? 'Show boxes' : 'Hide boxes';
    this.toggleButton.setAttribute('label', label);
    this.toggleButton.title = label;
    this.toggleButton.setAttribute('aria-pressed', String(hidden));
    this.paint();
  }

  // ---- find and describe --------------------------------------------------------------------

  private runFind(): void {
    const phrase = this.findInput.value.trim();
    if (!phrase || !this.imageId) return;
    this.findInput.value = '';
    this.hooks.find(this.imageId, phrase).catch((err: unknown) => {
      this.findInput.value = phrase;
      this.hooks.status(err instanceof Error ? err.message : String(err));
    });
  }

  private setRegionMode(on: boolean): void {
    if (on === this.region.mode && !on) return;
    this.region = { mode: on };
    this.view.element.classList.toggle('selecting', on);
    this.regionButton.setAttribute('aria-pressed', String(on));
    if (on) {
      // a keyboard user starts from the centre quarter and moves it with the arrows
      const { width: W, height: H } = this.view.naturalSize();
      if (W && H) this.region.rect = { x: W / 4, y: H / 4, width: W / 2, height: H / 2 };
      this.hooks.status('Drag over the image (or arrows to move, Shift+arrows to resize, Enter to ask, Escape to cancel).');
      this.view.viewport.focus();
    }
    this.paint();
  }

  private wireRegionSelection(): void {
    const toImage = (e: PointerEvent) => {
      const r = this.view.stage.getBoundingClientRect();
      const { width: W, height: H } = this.view.naturalSize();
      return {
        x: Math.min(W, Math.max(0, ((e.clientX - r.left) / r.width) * W)),
        y: Math.min(H, Math.max(0, ((e.clientY - r.top) / r.height) * H)),
      };
    };
    const stage = this.view.stage;
    stage.addEventListener('pointerdown', (e) => {
      if (!this.region.mode || e.button !== 0) return;
      e.preventDefault();
      stage.setPointerCapture(e.pointerId);
      const p = toImage(e);
      this.region.drag = p;
      this.region.rect = { x: p.x, y: p.y, width: 0, height: 0 };
      this.paint();
    });
    stage.addEventListener('pointermove', (e) => {
      const start = this.region.drag;
      if (!this.region.mode || !start) return;
      const p = toImage(e);
      this.region.rect = { x: Math.min(start.x, p.x), y: Math.min(start.y, p.y), width: Math.abs(p.x - start.x), height: Math.abs(p.y - start.y) };
      this.paint();
    });
    stage.addEventListener('pointerup', () => {
      if (!this.region.mode || !this.region.drag) return;
      this.region.drag = undefined;
      const r = this.region.rect;
      // a click without a drag keeps the mode on: nothing to ask about yet
      if (r && r.width >= 2 && r.height >= 2) this.askRegion();
    });
    this.view.viewport.addEventListener('keydown', (e) => {
      if (!this.region.mode) return;
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        this.setRegionMode(false);
        return;
      }
      if (e.key === 'Enter') {
        e.preventDefault();
        this.askRegion();
        return;
      }
      const dir: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
      const d = dir[e.key];
      const r = this.region.rect;
      if (!d || !r) return;
      e.preventDefault();
      const { width: W, height: H } = this.view.naturalSize();
      const dx = d[0] * W * KEY_STEP;
      const dy = d[1] * H * KEY_STEP;
      const next = e.shiftKey
        ? { ...r, width: Math.max(1, Math.min(W - r.x, r.width + dx)), height: Math.max(1, Math.min(H - r.y, r.height + dy)) }
        : { ...r, x: Math.min(W - r.width, Math.max(0, r.x + dx)), y: Math.min(H - r.height, Math.max(0, r.y + dy)) };
      this.region.rect = next;
      this.paint();
    });
  }

  private askRegion(): void {
    const r = this.region.rect;
    const id = this.imageId;
    this.setRegionMode(false);
    if (!r || !id) return;
    this.hooks.describeRegion(id, r).catch((err: unknown) => this.hooks.status(err instanceof Error ? err.message : String(err)));
  }

  // ---- export -------------------------------------------------------------------------------

  /** PNG bytes of the image with the shown boxes drawn at the image's own resolution. */
  async renderPng(): Promise<Blob> {
    const img = this.view.image;
    const { width: W, height: H } = this.view.naturalSize();
    if (!W || !H) throw new Error('No image is shown.');
    const canvas = document.createElement('canvas');
    canvas.width = W;
    canvas.height = H;
    const g = canvas.getContext('2d');
    if (!g) throw new Error('This webview cannot draw on a canvas.');
    // drawImage honours the <img>'s EXIF orientation, as the <img> does: both are in the oriented frame
    g.drawImage(img, 0, 0, W, H);
    const boxes = this.hidden ? [] : (this.current()?.boxes ?? []);
    const line = Math.max(2, Math.round(Math.max(W, H) / 400));
    const font = Math.max(12, Math.round(Math.max(W, H) / 60));
    g.font = `${font}px ${getComputedStyle(document.body).fontFamily || 'sans-serif'}`;
    g.textBaseline = 'top';
    boxes.forEach((b, i) => {
      const colour = this.colour(i);
      g.strokeStyle = colour;
      g.lineWidth = line;
      g.strokeRect(b.x, b.y, b.width, b.height);
      const text = b.phrase || String(i + 1);
      const tw = g.measureText(text).width + font * 0.6;
      const th = font * 1.35;
      const ty = b.y - th >= 0 ? b.y - th : b.y;
      g.fillStyle = colour;
      g.fillRect(b.x, ty, tw, th);
      g.fillStyle = '#ffffff';
      g.fillText(text, b.x + font * 0.3, ty + font * 0.18);
    });
    return new Promise((resolve, reject) => canvas.toBlob((b) => (b ? resolve(b) : reject(new Error('Could not encode the PNG.'))), 'image/png'));
  }

  /** the theme colour of box i, resolved (a canvas cannot read CSS variables) */
  private colour(i: number): string {
    const probe = el('span', `box-label c${i % BOX_COLOURS}`);
    probe.hidden = true;
    this.labels.append(probe);
    const c = getComputedStyle(probe).getPropertyValue('--box-colour').trim();
    probe.remove();
    return c || '#3794ff';
  }

  private async copyImage(): Promise<void> {
    try {
      const png = await this.renderPng();
      // VS Code's webview frames may or may not grant clipboard-write for images; say which
      await navigator.clipboard.write([new ClipboardItem({ 'image/png': png })]);
      this.hooks.status('Copied the image with its boxes.');
    } catch (err) {
      this.hooks.status(`Copying images is not permitted here (${err instanceof Error ? err.message : String(err)}); use Save image with boxes.`);
    }
  }

  private async saveImage(): Promise<void> {
    try {
      const png = await this.renderPng();
      await this.hooks.save(this.imageName, new Uint8Array(await png.arrayBuffer()));
    } catch (err) {
      this.hooks.status(err instanceof Error ? err.message : String(err));
    }
  }
}
