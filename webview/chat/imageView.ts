// The image viewer: fit-to-view by default, zoom with buttons or Ctrl+wheel (around the pointer).
// The <img> and an absolutely positioned <svg> overlay share one "stage" whose CSS size is the only
// thing zoom changes; the SVG's viewBox is the image's natural pixel size, so boxes drawn in image
// pixels (overlay.ts) stay on their objects at every zoom level.
// Sizes are set through CSSOM (element.style.x = ...), which the CSP's style-src allows; inline
// style attributes are blocked.

const SVG_NS = 'http://www.w3.org/2000/svg';
const MIN_ZOOM = 0.05;
const MAX_ZOOM = 16;
const STEP = 1.25;

export class ImageView {
  readonly element: HTMLElement;
  readonly viewport: HTMLElement;
  readonly stage: HTMLElement;
  private readonly img: HTMLImageElement;
  readonly overlay: SVGSVGElement;
  private readonly layoutListeners: (() => void)[] = [];
  private readonly zoomLabel: HTMLElement;
  /** null = fit to the viewport */
  private zoom: number | null = null;
  private currentUrl = '';

  constructor() {
    this.element = el('section', 'image-area');
    this.element.setAttribute('aria-label', 'Image');
    this.viewport = el('div', 'image-viewport');
    this.viewport.tabIndex = 0;
    this.viewport.setAttribute('aria-label', 'Image viewport (Ctrl+wheel or +/- to zoom, 0 to fit)');
    this.stage = el('div', 'image-stage');
    this.img = document.createElement('img');
    this.img.dataset.testid = 'image';
    this.img.alt = '';
    this.img.draggable = false;
    this.overlay = document.createElementNS(SVG_NS, 'svg');
    this.overlay.classList.add('image-overlay');
    this.overlay.setAttribute('aria-hidden', 'true');
    // the stage has the image's aspect ratio up to a rounded pixel: map the viewBox onto it exactly
    this.overlay.setAttribute('preserveAspectRatio', 'none');
    this.stage.append(this.img, this.overlay);
    this.viewport.append(this.stage);

    const controls = el('div', 'zoom-controls');
    controls.setAttribute('role', 'toolbar');
    controls.setAttribute('aria-label', 'Zoom');
    this.zoomLabel = el('span', 'zoom-label');
    this.zoomLabel.setAttribute('aria-live', 'polite');
    controls.append(
      iconButton('zoom-out', 'Zoom out', () => this.zoomBy(1 / STEP)),
      this.zoomLabel,
      iconButton('zoom-in', 'Zoom in', () => this.zoomBy(STEP)),
      iconButton('screen-normal', 'Fit to view', () => this.fit()),
      iconButton('screen-full', 'Actual size', () => this.setZoom(1)),
    );
    this.element.append(this.viewport, controls);

    // a file the browser cannot show (damaged, or a format it lacks): say so instead of a broken-image icon
    this.img.addEventListener('error', () => this.element.classList.toggle('broken', !!this.currentUrl));
    this.img.addEventListener('load', () => {
      this.element.classList.remove('broken');
      this.overlay.setAttribute('viewBox', `0 0 ${this.img.naturalWidth} ${this.img.naturalHeight}`);
      this.layout();
    });
    this.viewport.addEventListener(
      'wheel',
      (e) => {
        if (!e.ctrlKey && !e.metaKey) return;
        e.preventDefault();
        this.zoomBy(e.deltaY < 0 ? STEP : 1 / STEP, e);
      },
      { passive: false },
    );
    this.viewport.addEventListener('keydown', (e) => {
      if (e.key === '+' || e.key === '=') this.zoomBy(STEP);
      else if (e.key === '-') this.zoomBy(1 / STEP);
      else if (e.key === '0') this.fit();
      else return;
      e.preventDefault();
    });
    new ResizeObserver(() => this.zoom === null && this.layout()).observe(this.viewport);
    this.show(undefined, '');
  }

  get image(): HTMLImageElement {
    return this.img;
  }

  /** The image's size in its own pixels (EXIF-oriented, as the browser shows it); 0 before it loads. */
  naturalSize(): { width: number; height: number } {
    return { width: this.img.naturalWidth, height: this.img.naturalHeight };
  }

  /** Called after every layout (load, zoom, fit, resize). */
  onLayout(listener: () => void): void {
    this.layoutListeners.push(listener);
  }

  /** Shows an image (a blob: URL), or the empty state when url is undefined. */
  show(url: string | undefined, name: string): void {
    this.element.classList.toggle('empty', !url);
    if (!url) {
      this.img.removeAttribute('src');
      this.currentUrl = '';
      return;
    }
    if (url === this.currentUrl) return;
    this.element.classList.remove('broken');
    this.currentUrl = url;
    this.zoom = null;
    this.img.alt = name;
    this.img.src = url;
  }

  fit(): void {
    this.zoom = null;
    this.layout();
  }

  private zoomBy(factor: number, at?: { clientX: number; clientY: number }): void {
    this.setZoom((this.zoom ?? this.fitScale()) * factor, at);
  }

  private setZoom(z: number, at?: { clientX: number; clientY: number }): void {
    const old = this.zoom ?? this.fitScale();
    const next = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, z));
    // keep the image point under the pointer (or the centre) still while zooming
    const r = this.viewport.getBoundingClientRect();
    const px = at ? at.clientX - r.left : r.width / 2;
    const py = at ? at.clientY - r.top : r.height / 2;
    const ix = (this.viewport.scrollLeft + px) / old;
    const iy = (this.viewport.scrollTop + py) / old;
    this.zoom = next;
    this.layout();
    this.viewport.scrollLeft = ix * next - px;
    this.viewport.scrollTop = iy * next - py;
  }

  private fitScale(): number {
    const w = this.img.naturalWidth || 1;
    const h = this.img.naturalHeight || 1;
    const vw = Math.max(1, this.viewport.clientWidth - 2);
    const vh = Math.max(1, this.viewport.clientHeight - 2);
    // never enlarge a small image just to fill the space
    return Math.min(1, vw / w, vh / h);
  }

  private layout(): void {
    const w = this.img.naturalWidth;
    const h = this.img.naturalHeight;
    if (!w || !h) return;
    const scale = this.zoom ?? this.fitScale();
    this.stage.style.width = `${Math.round(w * scale)}px`;
    this.stage.style.height = `${Math.round(h * scale)}px`;
    this.viewport.classList.toggle('fit', this.zoom === null);
    this.zoomLabel.textContent = `${Math.round(scale * 100)}%`;
    for (const l of this.layoutListeners) l();
  }
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (className) e.className = className;
  return e;
}

/** A codicon action button (vscode-icon in action mode is a real, focusable button with a label). */
export function iconButton(icon: string, label: string, onClick: () => void): HTMLElement {
  const b = document.createElement('vscode-icon');
  b.setAttribute('name', icon);
  b.setAttribute('action-icon', '');
  b.setAttribute('label', label);
  b.title = label;
  b.addEventListener('click', onClick);
  return b;
}
