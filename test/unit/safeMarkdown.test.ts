// Model text streamed into the Chat view (src/extension/chat/safeMarkdown.ts): no raw HTML, no Markdown
// images (they would fetch a URL the model chose), also when `![` is split across two deltas.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SafeMarkdown } from '../../src/extension/chat/safeMarkdown';

function run(deltas: string[]): string {
  const out: string[] = [];
  const md = new SafeMarkdown((t) => out.push(t));
  for (const d of deltas) md.push(d);
  md.end();
  return out.join('');
}

test('HTML and images are escaped; the rest of the Markdown is kept', () => {
  assert.equal(run(['**bold** <img src=x onerror=alert(1)> and ![a](http://evil/x.png)']), '**bold** \\<img src=x onerror=alert(1)\\> and !\\[a](http://evil/x.png)');
});

test('an image split across deltas is still escaped; a final ! is kept', () => {
  assert.equal(run(['look!', '[a](http://e/x.png) wow!']), 'look!\\[a](http://e/x.png) wow!');
  assert.equal(run(['hi!', '!', '[x](y)']), 'hi!!\\[x](y)');
});
