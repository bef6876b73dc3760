// Model answers are hostile input: the Markdown the webview renders (webview/chat/messages.ts) before
// DOMPurify. No href for VS Code's own link handler to follow, no <img> from output, bidi controls that
// cannot act, line breaks kept, every block its own bidi context.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { markdownHtml, neutraliseBidi } from '../../webview/chat/messages';

test('links carry no href: only data-href, which the host checks before VS Code opens it', () => {
  for (const text of ['[docs](https://example.com/a)', 'see https://example.com/a now', '<https://example.com/a>', '[x](java%09script:alert(1))', '[x](command:workbench.action.terminal.new)']) {
    const html = markdownHtml(text);
    assert.doesNotMatch(html, /\shref=/, `${text} -> ${html}`);
  }
  assert.match(markdownHtml('[docs](https://example.com/a)'), /<a data-href="https:\/\/example\.com\/a"[^>]*role="link"[^>]*tabindex="0"/);
});

test('Markdown images become links with their alt text, never <img>', () => {
  const html = markdownHtml('look ![a cat](https://evil.example/track.png?u=1) and ![](http://127.0.0.1:9/x.png)');
  assert.doesNotMatch(html, /<img/i);
  assert.match(html, /data-href="https:\/\/evil\.example\/track\.png\?u=1"[^>]*>\[image: a cat\]<\/a>/);
  assert.match(html, /\[image: http:\/\/127\.0\.0\.1:9\/x\.png\]/);
});

test('bidi controls are shown, not obeyed; each block isolates its direction; line breaks kept', () => {
  const text = 'Download \u202Egnp.exe\nthen run it\n\nsecond paragraph \u2067x';
  const html = markdownHtml(text);
  assert.doesNotMatch(html, /[\u202A-\u202E\u2066-\u2069]/);
  assert.match(html, /\[U\+202E\]gnp\.exe<br>/);
  assert.match(html, /\[U\+2067\]x/);
  assert.equal((html.match(/<p dir="auto">/g) ?? []).length, 2);
  assert.equal(neutraliseBidi('a\u202Db'), 'a[U+202D]b');
  assert.match(markdownHtml('- one\n- two'), /<li dir="auto">one<\/li>/);
});
