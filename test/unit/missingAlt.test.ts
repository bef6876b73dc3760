// Finding missing alt text (src/extension/altText/missingAlt.ts) in Markdown and HTML/JSX, and writing
// the model's text back without breaking the reference.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { altEdit, findMissingAlt, isPlaceholderAlt } from '../../src/extension/altText/missingAlt';

test('Markdown: empty alt and file-name alt are missing; real alt text is not', () => {
  const md = '# t\n![](a.png) ![b.png](img/b.png) ![b](img/b.png) ![A red bus](c.png) ![](<d e.png> "title")\n';
  const found = findMissingAlt(md, 'markdown');
  assert.deepEqual(found.map((f) => f.src), ['a.png', 'img/b.png', 'img/b.png', 'd e.png']);
  for (const f of found) assert.equal(md[f.start - 1], '[', 'the range starts inside the brackets');
  assert.equal(md.slice(found[1].start, found[1].end), 'b.png');
});

test('HTML/JSX: <img> without alt is missing; alt="" (decorative) and alt={x} are kept', () => {
  const html = '<p><img src="a.png"><img alt="" src="b.png"><img src=\'c.png\' alt="C"><img\n  class="x" src={"d.png"} /><img src={e} alt={t}></p>';
  const found = findMissingAlt(html, 'typescriptreact');
  assert.deepEqual(found.map((f) => f.src), ['a.png', 'd.png']);
  for (const f of found) assert.equal(html.slice(f.start - 4, f.start), '<img');
  assert.equal(findMissingAlt('![](x.png)', 'html').length, 0, 'Markdown syntax is not looked for in HTML');
});

test('placeholder alts', () => {
  assert.ok(isPlaceholderAlt('IMG_0042', 'photos/IMG_0042.JPG'));
  assert.ok(isPlaceholderAlt(' image ', 'x.png'));
  assert.ok(!isPlaceholderAlt('A cat on a mat', 'cat.png'));
});

test('the edit cannot end the reference or inject markup', () => {
  assert.equal(altEdit('markdown', 'a [link](x)\nand \\ more', 'markdown'), 'a \\[link\\](x) and \\\\ more');
  assert.equal(altEdit('html', 'say "hi" <script>&', 'html'), ' alt="say &quot;hi&quot; &lt;script&gt;&amp;"');
  assert.equal(altEdit('html', 'a {b}', 'javascriptreact'), ' alt="a &#123;b&#125;"');
});
