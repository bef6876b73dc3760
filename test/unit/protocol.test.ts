// Host <-> webview protocol guards, link policy, and the host's conversation state (the snapshot the
// webview mirrors and the ChatTurn[] the engine receives). Plain Node: none of these import vscode.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  isHostToWebview,
  isPersistedState,
  isSafeLink,
  isWebviewToHost,
  mimeForName,
  MAX_IMAGE_BYTES,
  asBytes,
  standaloneBytes,
  type ChatImageData,
} from '../../src/protocol/index';
import { Conversation } from '../../src/extension/panels/conversation';

test('webview -> host: well-formed messages pass', () => {
  const ok: unknown[] = [
    { type: 'ready' },
    { type: 'ask', requestId: 1, text: 'what is this?' },
    { type: 'regenerate', requestId: 2 },
    { type: 'stop' },
    { type: 'clear' },
    { type: 'dropUris', requestId: 3, uris: ['file:///a.png'] },
    { type: 'addImageBytes', requestId: 4, name: 'p.png', mime: 'image/png', bytes: new Uint8Array([137, 80]) },
    { type: 'pickImages', requestId: 5 },
    { type: 'removePending', imageId: 'i-1' },
    { type: 'openLink', href: 'https://example.com' },
    { type: 'copy', text: 'answer' },
    { type: 'setFollowActive', on: true },
  ];
  for (const m of ok) assert.ok(isWebviewToHost(m), JSON.stringify(m));
});

test('webview -> host: malformed messages are refused', () => {
  const bad: unknown[] = [
    null,
    'ready',
    {},
    { type: 'unknown' },
    { type: 'ask', text: 'no request id' },
    { type: 'ask', requestId: -1, text: 'negative id' },
    { type: 'ask', requestId: 1.5, text: 'fractional id' },
    { type: 'ask', requestId: 1, text: 42 },
    { type: 'dropUris', requestId: 1, uris: 'file:///a.png' },
    { type: 'dropUris', requestId: 1, uris: [1] },
    { type: 'dropUris', requestId: 1, uris: Array.from({ length: 101 }, () => 'file:///a.png') },
    // bytes must be a real Uint8Array: a JSON-ish object would reach the engine as garbage
    { type: 'addImageBytes', requestId: 1, name: 'p.png', mime: 'image/png', bytes: { 0: 1 } },
    { type: 'addImageBytes', requestId: 1, name: 'p.png', mime: 'image/png', bytes: [1, 2] },
    { type: 'addImageBytes', requestId: 1, name: 'x.html', mime: 'text/html', bytes: new Uint8Array(1) },
    { type: 'setFollowActive', on: 'yes' },
    { type: 'openLink' },
  ];
  for (const m of bad) assert.ok(!isWebviewToHost(m), JSON.stringify(m));
});

test('webview -> host: images above the size limit are refused', () => {
  // a view on a large buffer: byteLength is what counts, without allocating 50 MiB per element
  const big = new Uint8Array(new ArrayBuffer(MAX_IMAGE_BYTES + 1));
  assert.ok(!isWebviewToHost({ type: 'addImageBytes', requestId: 1, name: 'big.png', mime: 'image/png', bytes: big }));
  const max = big.subarray(0, MAX_IMAGE_BYTES);
  assert.ok(isWebviewToHost({ type: 'addImageBytes', requestId: 1, name: 'ok.png', mime: 'image/png', bytes: max }));
});

test('host -> webview guards', () => {
  const snap = new Conversation().snapshot();
  assert.ok(isHostToWebview({ type: 'init', surface: 'panel', conversation: snap, images: [], followActive: false, busy: false }));
  assert.ok(!isHostToWebview({ type: 'init', surface: 'tab', conversation: snap, images: [], followActive: false, busy: false }));
  assert.ok(isHostToWebview({ type: 'delta', messageId: 'm', text: 'x' }));
  assert.ok(!isHostToWebview({ type: 'delta', messageId: 1, text: 'x' }));
  assert.ok(isHostToWebview({ type: 'response', requestId: 3 }));
  assert.ok(isHostToWebview({ type: 'response', requestId: 3, error: 'nope' }));
  assert.ok(!isHostToWebview({ type: 'response', requestId: 3, error: 7 }));
  assert.ok(!isHostToWebview({ type: 'imageAdded', image: { id: 'i', bytes: [1] }, pending: true }));
});

test('only web links to other hosts may be opened from model text', () => {
  for (const ok of ['https://example.com/a?b', 'http://example.org:8080/x', 'https://8.8.8.8/']) assert.ok(isSafeLink(ok), ok);
  for (const bad of [
    'mailto:a@b.c',
    'http://localhost:8080/',
    'http://127.0.0.1:9/x',
    'http://[::1]/',
    'http://192.168.1.1/admin',
    'http://10.0.0.2/',
    'http://172.20.0.1/',
    'http://169.254.169.254/latest/meta-data',
    'https://user:pw@example.com/',
    'java\tscript:alert(1)',
    'java%09script:alert(1)',
    ' https://example.com/',
    'https://example.com/' + 'a'.repeat(3000),
    'javascript:alert(1)',
    'JaVaScRiPt:alert(1)',
    'command:workbench.action.terminal.new',
    'vscode://file/etc/passwd',
    'file:///etc/passwd',
    'data:text/html,<script>',
    '/relative',
    '',
  ])
    assert.ok(!isSafeLink(bad), bad);
});

test('mime types follow the menu extensions, case-insensitively', () => {
  assert.equal(mimeForName('A.PNG'), 'image/png');
  assert.equal(mimeForName('x.jpeg'), 'image/jpeg');
  assert.equal(mimeForName('x.JPG'), 'image/jpeg');
  assert.equal(mimeForName('scan.tif'), 'image/tiff');
  assert.equal(mimeForName('d.svg'), 'image/svg+xml');
  assert.equal(mimeForName('notes.txt'), undefined);
  assert.equal(mimeForName('png'), undefined, 'a bare name without extension is not an image');
});

function img(id: string, bytes: number[], uri?: string): ChatImageData {
  return { id, name: `${id}.png`, mime: 'image/png', uri, bytes: new Uint8Array(bytes) };
}

test('conversation: pending images go with the next question, in order', () => {
  const c = new Conversation();
  c.addImage(img('a', [1], 'file:///a.png'));
  c.addImage(img('b', [2]));
  assert.equal(c.title, 'a.png', 'the first image names the conversation');
  assert.ok(c.isPendingUri('file:///a.png'));
  const q1 = c.addUserMessage('compare them');
  assert.deepEqual(q1.imageIds, ['a', 'b']);
  assert.deepEqual(c.pendingImageIds, []);
  assert.ok(!c.isPendingUri('file:///a.png'), 'sent images are no longer pending');
  const a1 = c.startAssistant();
  c.appendDelta(a1.id, 'The first ');
  c.appendDelta(a1.id, 'is red.');
  c.finish(a1.id, 'The first is red.');
  c.addImage(img('c', [3]));
  c.addUserMessage('and this one?');
  const turns = c.toTurns();
  assert.equal(turns.length, 3);
  assert.deepEqual(
    turns.map((t) => [t.role, t.text, (t.images ?? []).map((i) => ('name' in i ? i.name : ''))]),
    [
      ['user', 'compare them', ['a.png', 'b.png']],
      ['assistant', 'The first is red.', []],
      ['user', 'and this one?', ['c.png']],
    ],
  );
  const first = turns[0].images?.[0];
  assert.ok(first && 'bytes' in first && first.bytes instanceof Uint8Array && first.bytes[0] === 1);
});

test('conversation: failed and half-written answers are not sent back to the model', () => {
  const c = new Conversation();
  c.addUserMessage('q1');
  const bad = c.startAssistant();
  c.appendDelta(bad.id, 'half');
  c.fail(bad.id, 'engine crashed');
  c.addUserMessage('q2');
  c.startAssistant(); // streaming, not yet done
  assert.deepEqual(
    c.toTurns().map((t) => t.text),
    ['q1', 'q2'],
  );
});

test('conversation: regenerate removes the last answer and what follows', () => {
  const c = new Conversation();
  c.addUserMessage('q');
  const a = c.startAssistant();
  c.finish(a.id, 'first try');
  assert.equal(c.lastAssistant()?.id, a.id);
  assert.ok(c.removeFrom(a.id));
  assert.equal(c.lastAssistant(), undefined);
  assert.equal(c.messages.length, 1);
  assert.ok(!c.removeFrom('nope'));
});

test('conversation: a standalone question (Find in Image) goes to the model alone, with its one image; a follow-up sees it', () => {
  const c = new Conversation();
  c.addImage(img('a', [1], 'file:///a.png'));
  c.addUserMessage('What colour is the star?');
  c.finish(c.startAssistant().id, 'Orange');
  c.addImage(img('b', [2], 'file:///b.png'));
  const find = c.addUserMessage('Find: the orange star', { standaloneImageId: 'a' });
  assert.deepEqual(find.imageIds, ['b'], 'the pending image still goes with this message');
  const shape = (turns: ReturnType<Conversation['toTurns']>) => turns.map((t) => [t.role, t.text, (t.images ?? []).map((i) => ('name' in i ? i.name : ''))]);
  assert.deepEqual(shape(c.toTurns()), [['user', 'Find: the orange star', ['a.png']]]);
  assert.deepEqual(c.turnImageIds(), ['a'], 'geometries come back for that image alone');
  // regenerate answers the same standalone question
  const a = c.startAssistant();
  c.finish(a.id, '[0.1, 0.2, 0.3, 0.4]');
  assert.ok(c.removeFrom(a.id));
  assert.deepEqual(shape(c.toTurns()), [['user', 'Find: the orange star', ['a.png']]]);
  // the next ordinary question sees the whole conversation, the Find turn included
  c.finish(c.startAssistant().id, '[0.1, 0.2, 0.3, 0.4]');
  c.addUserMessage('Is it big?');
  assert.deepEqual(shape(c.toTurns()), [
    ['user', 'What colour is the star?', ['a.png']],
    ['assistant', 'Orange', []],
    ['user', 'Find: the orange star', ['b.png']],
    ['assistant', '[0.1, 0.2, 0.3, 0.4]', []],
    ['user', 'Is it big?', []],
  ]);
  assert.deepEqual(c.turnImageIds(), ['a', 'b']);
  // it survives the snapshot (Regenerate after a reload) and the guard checks it
  const snap = JSON.parse(JSON.stringify(c.snapshot()));
  assert.ok(isPersistedState({ conversation: snap, followActive: false }));
  snap.messages[2].standaloneImageId = 7;
  assert.ok(!isPersistedState({ conversation: snap, followActive: false }));
});

test('conversation: a restored snapshot is valid persisted state; streaming answers become interrupted', () => {
  const c = new Conversation();
  c.addImage(img('a', [9], 'file:///a.png'));
  c.addUserMessage('q');
  c.startAssistant();
  const snap = c.snapshot();
  assert.ok(isPersistedState({ conversation: snap, followActive: false }));
  assert.ok(!isPersistedState({ conversation: { ...snap, messages: [{ id: 'x' }] }, followActive: false }));
  // JSON round trip, as vscode.setState stores it (bytes are never part of the snapshot)
  const restored = new Conversation(JSON.parse(JSON.stringify(snap)), [img('a', [9], 'file:///a.png')]);
  assert.equal(restored.messages[1].state, 'error');
  assert.match(restored.messages[1].error ?? '', /Interrupted/);
  assert.equal(restored.imageData().length, 1);
  // without the bytes (a pasted image after a reload) the question is sent without it
  const noBytes = new Conversation(JSON.parse(JSON.stringify(snap)));
  assert.deepEqual(noBytes.toTurns(), [{ role: 'user', text: 'q' }]);
});

test('conversation: removing a pending image drops its bytes; clear starts a new conversation', () => {
  const c = new Conversation();
  c.addImage(img('a', [1]));
  const id = c.id;
  assert.ok(c.removePending('a'));
  assert.ok(!c.removePending('a'));
  assert.equal(c.imageData().length, 0);
  c.addUserMessage('x');
  c.clear();
  assert.equal(c.messages.length, 0);
  assert.notEqual(c.id, id);
});

test('image bytes: views into larger buffers are copied exactly; foreign shapes are refused', () => {
  const whole = new Uint8Array([0, 0, 137, 80, 78, 71, 0]);
  const view = whole.subarray(2, 6); // what readFile over a remote connection can return
  const copy = standaloneBytes(view);
  assert.equal(copy.byteOffset, 0);
  assert.equal(copy.buffer.byteLength, 4, 'the copy owns exactly the file bytes');
  assert.deepEqual([...copy], [137, 80, 78, 71]);
  // a Node Buffer would reach the webview as JSON ({type:'Buffer',data:[...]}): it must become a plain Uint8Array
  const fromBuffer = standaloneBytes(Buffer.from([1, 2, 3]));
  assert.equal(Object.getPrototypeOf(fromBuffer), Uint8Array.prototype);
  assert.equal(JSON.stringify(fromBuffer), '{"0":1,"1":2,"2":3}', 'no Buffer toJSON');
  const exact = new Uint8Array([1, 2]);
  assert.equal(standaloneBytes(exact), exact, 'an exact buffer is not copied');
  assert.deepEqual([...(asBytes(new Uint8Array([5, 6]).buffer) ?? [])], [5, 6]);
  assert.deepEqual([...(asBytes(new DataView(whole.buffer, 2, 2)) ?? [])], [137, 80]);
  assert.equal(asBytes({ 0: 137, 1: 80 }), undefined);
  assert.equal(asBytes([137, 80]), undefined);
});

test('guidance messages: buttons travel both ways and are checked', () => {
  const ok: unknown[] = [
    { type: 'messageAction', requestId: 7, messageId: 'm-1', actionId: 'download' },
    { type: 'undoClear' },
    { type: 'openWalkthrough' },
    { type: 'ask', requestId: 8, text: 'what is here?', boxImageId: 'i-1' },
  ];
  for (const m of ok) assert.ok(isWebviewToHost(m), JSON.stringify(m));
  const bad: unknown[] = [
    { type: 'messageAction', requestId: 7, messageId: 'm-1' },
    { type: 'messageAction', requestId: 7, messageId: 'm-1', actionId: 'x'.repeat(101) },
    { type: 'ask', requestId: 8, text: 'q', boxImageId: 3 },
  ];
  for (const m of bad) assert.ok(!isWebviewToHost(m), JSON.stringify(m));
  const actions = [{ id: 'download', label: 'Download nanoLLaVA 1.5 (1.1 GB)', primary: true }, { id: 'localFolder', label: 'Use Local Folder…' }];
  assert.ok(isHostToWebview({ type: 'messageDone', messageId: 'm', text: 'A model is needed', actions }));
  assert.ok(isHostToWebview({ type: 'messageError', messageId: 'm', error: 'offline', actions }));
  assert.ok(isHostToWebview({ type: 'draft', text: 'Describe [0.1, 0.2, 0.3, 0.4]', boxImageId: 'i-1' }));
  assert.ok(isHostToWebview({ type: 'cleared', canUndo: true }));
  assert.ok(!isHostToWebview({ type: 'messageDone', messageId: 'm', text: 't', actions: [{ id: 'x' }] }));
  assert.ok(!isHostToWebview({ type: 'messageDone', messageId: 'm', text: 't', actions: 'download' }));
});

test('conversation: guidance answers are never sent to the model; clear can be undone', () => {
  const c = new Conversation();
  c.addImage({ id: 'i1', name: 'a.png', mime: 'image/png', bytes: new Uint8Array([1, 2, 3]) });
  c.addUserMessage('what is this?');
  const g = c.startAssistant();
  c.finish(g.id, 'A model is needed to answer.', undefined, [{ id: 'download', label: 'Download' }]);
  assert.ok(c.isGuidance(g.id));
  assert.deepEqual(c.toTurns().map((t) => t.role), ['user'], 'the guidance text reached the model');
  // a real answer has no buttons (finish without actions removes them)
  c.finish(g.id, 'a cat');
  assert.ok(!c.isGuidance(g.id));
  assert.deepEqual(c.toTurns().map((t) => t.role), ['user', 'assistant']);

  const snap = c.snapshot();
  const images = c.imageData();
  c.clear();
  assert.ok(c.isEmpty);
  c.restore(snap, images);
  assert.equal(c.messages.length, 2);
  assert.deepEqual([...(c.toTurns()[0].images![0] as { bytes: Uint8Array }).bytes], [1, 2, 3], 'Undo Clear lost the image bytes');
});
