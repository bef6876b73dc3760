// Streamed text to the webview: one post per ~30 ms instead of one per token (the webview trailed fast
// models by seconds and Stop looked slow), nothing lost, nothing after a Stop.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DeltaCoalescer } from '../../src/extension/panels/deltaCoalescer';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a burst of tokens becomes one post; the text is complete and in order', async () => {
  const posts: string[] = [];
  const c = new DeltaCoalescer((t) => posts.push(t), 30);
  for (let i = 0; i < 500; i++) c.push(`t${i} `);
  assert.equal(posts.length, 0, 'nothing is posted synchronously per token');
  await sleep(60);
  assert.equal(posts.length, 1);
  c.push('last');
  c.flush();
  assert.equal(posts.join(''), Array.from({ length: 500 }, (_, i) => `t${i} `).join('') + 'last');
});

test('tokens over time are posted at most once per interval', async () => {
  const posts: string[] = [];
  const c = new DeltaCoalescer((t) => posts.push(t), 30);
  const started = Date.now();
  while (Date.now() - started < 300) {
    c.push('x');
    await sleep(2);
  }
  c.flush();
  assert.ok(posts.length <= 300 / 30 + 2, `${posts.length} posts in 300 ms`);
  assert.ok(posts.length >= 3, `${posts.length} posts: text still streams`);
});

test('discard: what was waiting when Stop came is never posted', async () => {
  const posts: string[] = [];
  const c = new DeltaCoalescer((t) => posts.push(t), 30);
  c.push('shown');
  c.flush();
  c.push(' after stop');
  c.discard();
  await sleep(60);
  c.flush();
  assert.deepEqual(posts, ['shown']);
});
