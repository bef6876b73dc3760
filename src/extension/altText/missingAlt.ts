// Where alt text is missing in a Markdown or HTML/JSX document (vscode-free, so it is unit-tested on
// plain strings): `![](img.png)`, `![img.png](img.png)` / `![img](img.png)` (alt that is only the file
// name), and `<img src="...">` with no alt attribute (an empty `alt=""` is a deliberate "decorative"
// in HTML and is left alone). Offsets are UTF-16 indices into the text, as VS Code's positionAt takes.

export interface MissingAlt {
  /** the image reference as written (relative to the document, or root-relative) */
  src: string;
  /** replace [start, end) with the new alt text (Markdown), or insert at start (HTML: start === end) */
  start: number;
  end: number;
  kind: 'markdown' | 'html';
  /** the whole reference, for code actions under the cursor */
  refStart: number;
  refEnd: number;
}

const MD_IMAGE = /!\[([^\]\n]*)\]\(\s*(<[^>\n]+>|[^)\s]+)(?:\s+(?:"[^"\n]*"|'[^'\n]*'))?\s*\)/g;
const HTML_IMG = /<img\b(?:[^>"'{]|"[^"]*"|'[^']*'|\{[^}]*\})*\/?>/gi;
const SRC_ATTR = /\ssrc\s*=\s*(?:"([^"]*)"|'([^']*)'|\{\s*["'`]([^"'`]*)["'`]\s*\})/i;
const ALT_ATTR = /\salt\s*(=|\s|\/?>)/i;

const MARKDOWN = new Set(['markdown', 'mdx']);
export const ALT_LANGUAGES = ['markdown', 'mdx', 'html', 'javascriptreact', 'typescriptreact', 'vue', 'svelte', 'astro', 'php'];

function baseName(src: string): string {
  const clean = decodeURIComponentSafe(src.split(/[?#]/)[0]);
  return clean.slice(clean.lastIndexOf('/') + 1);
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** An alt that says nothing the file name does not ("", "img.png", "img", "IMG_0042"). */
export function isPlaceholderAlt(alt: string, src: string): boolean {
  const a = alt.trim().toLowerCase();
  if (!a) return true;
  const name = baseName(src).toLowerCase();
  return a === name || a === name.replace(/\.[^.]+$/, '') || a === 'image' || a === 'alt text';
}

export function findMissingAlt(text: string, languageId: string): MissingAlt[] {
  const out: MissingAlt[] = [];
  // Markdown images in any of these languages (MDX and READMEs); HTML <img> in every one of them
  if (MARKDOWN.has(languageId)) {
    for (const m of text.matchAll(MD_IMAGE)) {
      const alt = m[1];
      const src = m[2].replace(/^<|>$/g, '');
      if (!isPlaceholderAlt(alt, src)) continue;
      const start = m.index! + 2;
      out.push({ src, start, end: start + alt.length, kind: 'markdown', refStart: m.index!, refEnd: m.index! + m[0].length });
    }
  }
  for (const m of text.matchAll(HTML_IMG)) {
    const tag = m[0];
    if (ALT_ATTR.test(tag)) continue;
    const s = SRC_ATTR.exec(tag);
    const src = s?.[1] ?? s?.[2] ?? s?.[3];
    if (!src) continue;
    const at = m.index! + 4; // after `<img`
    out.push({ src, start: at, end: at, kind: 'html', refStart: m.index!, refEnd: m.index! + tag.length });
  }
  return out.sort((a, b) => a.start - b.start);
}

/** The model's alt text as it is written into the document: one line, no syntax that would end the reference. */
export function altEdit(kind: MissingAlt['kind'], caption: string, languageId: string): string {
  const line = caption.replace(/\s+/g, ' ').trim();
  if (kind === 'markdown') return line.replace(/\\/g, '\\\\').replace(/([[\]])/g, '\\$1');
  const escaped = line.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  // JSX takes a string attribute the same way; `{` would open an expression in JSX / Svelte / Astro
  const safe = languageId === 'html' ? escaped : escaped.replace(/[{}]/g, (c) => (c === '{' ? '&#123;' : '&#125;'));
  return ` alt="${safe}"`;
}
