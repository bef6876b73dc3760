// The chat side of "Ask About a Downscaled Copy" (issue 15, item 8), without VS Code: which failures
// offer it, the conversation sending `downscale` from then on (persisted, checked by the snapshot
// guard), and the note under the answer. The engine side is test/unit/downscale.test.ts.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EngineError } from '../../src/core/errors';
import type { ImageGeometry } from '../../src/core/types';
import { askFailureGuidance, downscaleHelps, imageTooLargeInWords, isGuidanceActionId } from '../../src/extension/guidance';
import { Conversation } from '../../src/extension/panels/conversation';
import { downscaleNote, isSnapshot, isHostToWebview } from '../../src/protocol/index';

const PIXELS = 'poster.png: 9000x8000 (72000000 pixels) exceeds the limit of 64000000 pixels';
const SIDE = 'long.png: 40000x2000: a side longer than 32768 pixels';

test('the offer comes with pixel and side limits only, and only where the chat asks for it', () => {
  const ids = (msg: string, offer = true) => askFailureGuidance(new EngineError('IMAGE_TOO_LARGE', msg), 'auto', true, { offerDownscale: offer }).actions.map((a) => a.id);
  assert.deepEqual(ids(PIXELS), ['askDownscaled']);
  assert.deepEqual(ids(SIDE), ['askDownscaled']);
  assert.deepEqual(ids(PIXELS, false), []);
  // a copy cannot help: file size (the chat reads at most 50 MiB anyway), aspect, the hard ceiling
  assert.deepEqual(ids('huge.tif: file is 83886080 bytes, over the limit of 67108864 bytes'), []);
  assert.deepEqual(ids('ribbon.png: 40000x100: aspect ratio over 100:1'), []);
  assert.deepEqual(ids('bomb.png: 100000x100000 (10000000000 pixels) exceeds the limit of 1000000000 pixels, even for a downscaled copy'), []);
  assert.ok(!downscaleHelps('odd.png: something else'));
  assert.ok(isGuidanceActionId('askDownscaled'));
  // another error never offers it
  assert.deepEqual(askFailureGuidance(new EngineError('IMAGE_DECODE', 'x.png: bad'), 'auto', true, { offerDownscale: true }).actions, []);
});

test('size limits in words: the side limit and the ceiling are formatted too', () => {
  assert.equal(imageTooLargeInWords(SIDE), '**long.png is too large:** 40,000 × 2,000 px has a side over the 32,768 px limit. Scale it down and ask again.');
  assert.match(
    imageTooLargeInWords('bomb.png: 100000x100000 (10000000000 pixels) exceeds the limit of 1000000000 pixels, even for a downscaled copy'),
    /100,000 × 100,000 px \(10,000 MP\) is over the 1,000 MP limit/,
  );
  // the remote backend's byte checks
  assert.match(imageTooLargeInWords('a.png: 83886080 bytes is over the 20971520 byte limit'), /80 MB is over the 20 MB limit\. Save it smaller/);
  assert.match(imageTooLargeInWords('a.png: larger than 20971520 bytes'), /it is over the 20 MB limit\./);
});

function chatWithImages(): { c: Conversation; big: string; small: string } {
  const c = new Conversation();
  const big = c.addImage({ id: 'i1', name: 'poster.png', mime: 'image/png', bytes: new Uint8Array([1]) }).id;
  const small = c.addImage({ id: 'i2', name: 'icon.png', mime: 'image/png', bytes: new Uint8Array([2]) }).id;
  c.addUserMessage('What is on the poster?');
  return { c, big, small };
}

test('choosing the offer: every image the conversation sends goes with downscale from then on, persisted', () => {
  const { c, big, small } = chatWithImages();
  const flags = () => c.toTurns().flatMap((t) => t.images ?? []).map((i) => ('downscale' in i ? i.downscale : undefined));
  assert.deepEqual(flags(), [undefined, undefined]);
  c.setGeometry(big, { originalWidth: 1 } as ImageGeometry);
  assert.deepEqual(c.allowDownscale(), [big, small]);
  assert.deepEqual(flags(), [true, true]);
  assert.equal(c.geometry(big), undefined, 'a geometry learnt before no longer applies');
  assert.equal(c.imageInput(big)?.downscale, true, 'Describe region preprocesses the same copy');
  // a follow-up keeps sending the flag; the bytes are unchanged
  c.finish(c.startAssistant().id, 'A poster.');
  c.addUserMessage('And the colours?');
  assert.deepEqual(flags(), [true, true]);
  assert.deepEqual(c.imageInput(big)?.bytes, new Uint8Array([1]));
  // it survives a reload (snapshot) and the guard accepts it, but not a wrong type
  const snap = c.snapshot();
  assert.ok(isSnapshot(snap));
  assert.equal(new Conversation(snap, c.imageData()).imageInput(big)?.downscale, true);
  assert.ok(!isSnapshot({ ...snap, images: [{ ...snap.images[0], downscale: 'yes' }] }));
  // an empty conversation marks nothing (the button then does nothing)
  assert.deepEqual(new Conversation().allowDownscale(), []);
});

test('the note under the answer names the copy and its size', () => {
  const { c, big, small } = chatWithImages();
  const g = { mode: 'pad', originalWidth: 9000, originalHeight: 8000 } as ImageGeometry;
  const r = c.downscaledImages([big, small], [{ ...g, downscaledTo: { width: 4096, height: 3641 } }, { ...g, originalWidth: 64 }]);
  assert.deepEqual(r, { downscaled: [{ name: 'poster.png', width: 4096, height: 3641 }] });
  assert.equal(downscaleNote(r.downscaled), 'asked about a copy of poster.png downscaled to 4,096 × 3,641 px');
  assert.equal(
    downscaleNote([...r.downscaled!, { name: 'b.jpg', width: 1000, height: 4096 }]),
    'asked about copies of poster.png downscaled to 4,096 × 3,641 px, b.jpg downscaled to 1,000 × 4,096 px',
  );
  assert.equal(downscaleNote(undefined), undefined);
  assert.deepEqual(c.downscaledImages([big, small], [g, g]), {}, 'nothing downscaled: no note');
  assert.deepEqual(c.downscaledImages([big], [g, g]), {}, 'geometries that do not match the images are not trusted');
  // the note's data travels to the webview in messageDone's stats
  const stats = { newTokens: 3, tokensPerSecond: 1, timeToFirstTokenMs: 5, stopReason: 'eos' as const, ...r };
  assert.ok(isHostToWebview({ type: 'messageDone', messageId: 'm1', text: 'A poster.', stats }));
});
