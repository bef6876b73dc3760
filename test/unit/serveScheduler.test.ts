// The request queue of `llava serve` (src/server/scheduler.ts) over a scripted model: requests that
// wait while the model is busy are decoded together, only rows with the same sampling share a batch,
// a client that leaves drops its row without disturbing the others, and a batch whose clients all
// left is aborted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { BatchEvent, BatchRequest } from '../../src/engine/index';
import { Scheduler, type BatchModel } from '../../src/server/scheduler';

/** A model whose batches finish when the test says so; it records each batch's rows and signal. */
function scriptedModel() {
  const batches: { texts: string[]; signal?: AbortSignal; temperature?: number; release: () => void }[] = [];
  const model: BatchModel = {
    async *generateBatch(requests: BatchRequest[], opts = {}): AsyncIterable<BatchEvent> {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      const texts = requests.map((r) => r.turns[0].text);
      batches.push({ texts, signal: opts.signal, temperature: opts.temperature, release });
      for (let i = 0; i < requests.length; i++) yield { type: 'delta', index: i, text: `${texts[i]}:` };
      await gate;
      for (let i = 0; i < requests.length; i++) {
        if (opts.signal?.aborted) return;
        const stats = { promptTokens: 1, newTokens: 1, imageTokens: 0, timeToFirstTokenMs: 0, decodeTokensPerSecond: 0, totalMs: 0, stopReason: 'eos' as const, tokenIds: [] };
        yield { type: 'done', index: i, text: `${texts[i]}!`, stats };
      }
    },
  };
  return { model, batches };
}

const tick = () => new Promise((r) => setTimeout(r, 0));
const job = (text: string, signal = new AbortController().signal, temperature?: number) => {
  const deltas: string[] = [];
  return { deltas, spec: { request: { turns: [{ role: 'user' as const, text }] }, sampling: { temperature }, signal, onDelta: (t: string) => deltas.push(t) } };
};

test('requests that arrive while the model is busy are decoded together, grouped by sampling', async () => {
  const { model, batches } = scriptedModel();
  const s = new Scheduler(model, { maxBatch: 3, maxQueue: 10, defaultMaxTokens: 8 });
  const a = job('a');
  const first = s.submit(a.spec);
  await tick();
  const rest = [job('b'), job('c'), job('hot', undefined, 0.7), job('d'), job('e')].map((j) => ({ j, p: s.submit(j.spec) }));
  await tick();
  assert.deepEqual(batches.map((b) => b.texts), [['a']]);
  batches[0].release();
  assert.equal((await first).text, 'a!');
  assert.deepEqual(a.deltas, ['a:']);
  await tick();
  assert.deepEqual(batches[1].texts, ['b', 'c', 'd'], 'the oldest and the next with the same sampling, up to maxBatch');
  batches[1].release();
  await tick();
  assert.deepEqual(batches[2].texts, ['hot'], 'a different temperature gets its own batch');
  assert.equal(batches[2].temperature, 0.7);
  batches[2].release();
  await tick();
  batches[3].release();
  const texts = await Promise.all(rest.map((r) => r.p.then((x) => x.text)));
  assert.deepEqual(texts, ['b!', 'c!', 'hot!', 'd!', 'e!']);
  assert.equal(s.batches, 4);
});

test('a client that leaves drops its row; when all rows left, the batch is aborted', async () => {
  const { model, batches } = scriptedModel();
  const s = new Scheduler(model, { maxBatch: 4, maxQueue: 10, defaultMaxTokens: 8 });
  const leaving = new AbortController();
  const p1 = s.submit(job('stay').spec);
  const p2 = s.submit(job('leave', leaving.signal).spec);
  await tick();
  leaving.abort();
  await assert.rejects(p2, (e: any) => e.code === 'ABORTED');
  assert.equal(batches[0].signal?.aborted, false, 'the other row keeps decoding');
  batches[0].release();
  assert.equal((await p1).text, 'stay!');

  const all = new AbortController();
  const p3 = s.submit(job('x', all.signal).spec);
  await tick();
  all.abort();
  await assert.rejects(p3);
  assert.equal(batches[1].signal?.aborted, true, 'nobody is listening: the batch stops');
  batches[1].release();
  await s.idle();
});

test('a full queue refuses with 429', async () => {
  const { model, batches } = scriptedModel();
  const s = new Scheduler(model, { maxBatch: 1, maxQueue: 1, defaultMaxTokens: 8 });
  const p1 = s.submit(job('1').spec);
  await tick();
  const p2 = s.submit(job('2').spec);
  await assert.rejects(s.submit(job('3').spec), (e: any) => e.status === 429 && e.code === 'queue_full');
  batches[0].release();
  await p1;
  await tick();
  batches[1].release();
  await p2;
});
