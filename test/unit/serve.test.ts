// `llava serve` (src/server/ + src/cli/serve.ts) against the official `openai` client: a real server
// process on the tiny fixture model, answers compared with the engine's own greedy answers, streaming
// and not, concurrent requests batched, malformed requests each refused with a 4xx in OpenAI's error
// shape while the server stays up, the API key, the local-file and remote-URL policies, and SIGTERM.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import OpenAI from 'openai';
import sharp from 'sharp';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { startServer } from '../../src/server/index';
import { ensureFixtures, fixtureDir } from '../fixtures/index';
import { startLlavaServe, type ServeProcess } from '../helpers/llavaServe';

const TOKENS = 12;
const NAME = 'tiny-llava';
let model: LlavaModel;
let serve: ServeProcess;
let client: OpenAI;
let work: string;
let png: Buffer;
let png2: Buffer;

const dataUrl = (b: Buffer, mime = 'image/png') => `data:${mime};base64,${b.toString('base64')}`;
const userWith = (url: string, text = 'What is in this image?') => [
  { role: 'user' as const, content: [{ type: 'text' as const, text }, { type: 'image_url' as const, image_url: { url } }] },
];

async function engineAnswer(bytes: Buffer, text = 'What is in this image?'): Promise<string> {
  let out = '';
  for await (const ev of model.generate([{ role: 'user', text, images: [{ bytes: new Uint8Array(bytes), name: 'x' }] }], { maxNewTokens: TOKENS })) {
    if (ev.type === 'done') out = ev.text;
  }
  return out;
}

async function post(body: string, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const res = await fetch(`${serve.url}/v1/chat/completions`, { method: 'POST', headers, body });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, json, text };
}

async function assertAlive(): Promise<void> {
  const res = await fetch(`${serve.url}/health`);
  assert.equal(res.status, 200);
  assert.equal((await res.json()).status, 'ok');
}

function assertErrorShape(json: any, code: string): void {
  assert.ok(json && typeof json.error === 'object', `an OpenAI error body: ${JSON.stringify(json)}`);
  assert.equal(typeof json.error.message, 'string');
  assert.equal(typeof json.error.type, 'string');
  assert.equal(json.error.code, code);
}

before(async () => {
  await ensureFixtures();
  work = mkdtempSync(path.join(os.tmpdir(), 'llava-serve-'));
  png = await sharp({ create: { width: 40, height: 30, channels: 3, background: '#c04020' } }).png().toBuffer();
  png2 = await sharp({ create: { width: 24, height: 48, channels: 3, background: '#2040c0' } }).png().toBuffer();
  writeFileSync(path.join(work, 'inside.png'), png);
  model = await loadModel(fixtureDir(NAME), { provider: 'cpu', variant: 'fp32', threads: 1 });
  const allowed = path.join(work, 'allowed');
  await import('node:fs/promises').then((f) => f.mkdir(allowed));
  writeFileSync(path.join(allowed, 'ok.png'), png);
  symlinkSync(path.join(work, 'inside.png'), path.join(allowed, 'escape.png')); // points outside the folder
  serve = await startLlavaServe(fixtureDir(NAME), ['--allow-files', allowed, '--max-body-mb', '1', '--max-tokens', '64']);
  client = new OpenAI({ baseURL: `${serve.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});

after(async () => {
  if (serve && serve.child.exitCode === null) {
    serve.child.kill('SIGKILL');
    await serve.exited;
  }
  await model?.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('llava serve with the openai client', () => {
  test('GET /v1/models lists the served model', async () => {
    const list = await client.models.list();
    assert.deepEqual(list.data.map((m) => m.id), [NAME]);
  });

  test('a non-streaming answer is the engine answer', async () => {
    const want = await engineAnswer(png);
    const r = await client.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: TOKENS });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.choices[0].message.role, 'assistant');
    assert.equal(r.choices[0].message.content, want);
    assert.ok(want.length > 0);
    assert.equal(r.choices[0].finish_reason, 'length', `${TOKENS} tokens cap the tiny model's answer`);
    assert.equal(r.usage?.completion_tokens, TOKENS);
    assert.ok((r.usage?.prompt_tokens ?? 0) > TOKENS);
  });

  test('streamed deltas (with a system message) add up to the engine answer, then usage and [DONE]', async () => {
    // a system message goes before the first user turn's text
    const want = await engineAnswer(png2, 'Be brief.\n\nDescribe it.');
    const stream = await client.chat.completions.create({
      model: NAME,
      messages: [{ role: 'system', content: 'Be brief.' }, ...userWith(dataUrl(png2), 'Describe it.')],
      max_tokens: TOKENS,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let chunks = 0;
    let finish: string | null = null;
    let usage: any;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text += ch.delta.content ?? '';
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      chunks++;
    }
    assert.equal(text, want);
    assert.ok(chunks > 3, `streamed in pieces (${chunks} chunks)`);
    assert.equal(finish, 'length');
    assert.equal(usage?.completion_tokens, TOKENS);
  });

  test('concurrent requests are answered as if alone (batched through generateBatch)', async () => {
    const wants = [await engineAnswer(png), await engineAnswer(png2), await engineAnswer(png, 'Colour?')];
    const got = await Promise.all([
      client.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: TOKENS }),
      client.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png2)), max_tokens: TOKENS }),
      client.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png), 'Colour?'), max_tokens: TOKENS }),
    ]);
    assert.deepEqual(got.map((r) => r.choices[0].message.content), wants);
  });

  test('a file under --allow-files is read; outside it (or through a symlink out) is refused', async () => {
    const ok = await client.chat.completions.create({ model: NAME, messages: userWith(path.join(work, 'allowed', 'ok.png')), max_tokens: TOKENS });
    assert.equal(ok.choices[0].message.content, await engineAnswer(png));
    for (const p of [path.join(work, 'inside.png'), path.join(work, 'allowed', 'escape.png'), `file://${path.join(work, 'allowed', '..', 'inside.png')}`]) {
      const r = await post(JSON.stringify({ model: NAME, messages: userWith(p) }));
      assert.equal(r.status, 404, p);
      assertErrorShape(r.json, 'image_not_found');
    }
    await assertAlive();
  });

  test('the client sees refusals as typed API errors', async () => {
    await assert.rejects(client.chat.completions.create({ model: 'gpt-4o', messages: userWith(dataUrl(png)) }), (err: any) => {
      assert.equal(err.status, 404);
      assert.equal(err.code, 'model_not_found');
      return true;
    });
  });
});

describe('malformed requests: a 4xx each, and the server stays up', () => {
  const good = () => ({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: 2 });
  const cases: [string, () => Promise<{ status: number; json: any }>, number, string][] = [
    ['bad JSON', () => post('{"model": "tiny-llava", "messages": ['), 400, 'invalid_json'],
    ['a body over --max-body-mb', () => post(JSON.stringify({ ...good(), pad: 'x'.repeat(1_100_000) })), 413, 'request_too_large'],
    ['text/plain', () => post(JSON.stringify(good()), { 'content-type': 'text/plain' }), 415, 'unsupported_media_type'],
    ['form data', () => post('model=tiny-llava', { 'content-type': 'application/x-www-form-urlencoded' }), 415, 'unsupported_media_type'],
    ['bad base64', () => post(JSON.stringify({ ...good(), messages: userWith('data:image/png;base64,iVBOR w0K!!GgoAAA') })), 400, 'invalid_base64'],
    ['base64 that is not an image', () => post(JSON.stringify({ ...good(), messages: userWith(dataUrl(Buffer.from('hello, not a png at all'))) })), 400, 'invalid_image'],
    ['a data: URL of text/plain', () => post(JSON.stringify({ ...good(), messages: userWith(dataUrl(png, 'text/plain')) })), 400, 'invalid_image_url'],
    ['a remote URL without --allow-remote-images', () => post(JSON.stringify({ ...good(), messages: userWith('http://127.0.0.1:9/x.png') })), 400, 'remote_images_disabled'],
    ['messages missing', () => post(JSON.stringify({ model: NAME })), 400, 'invalid_value'],
    ['a tool message', () => post(JSON.stringify({ model: NAME, messages: [{ role: 'tool', content: 'x' }] })), 400, 'invalid_value'],
    ['last message from the assistant', () => post(JSON.stringify({ model: NAME, messages: [{ role: 'assistant', content: 'x' }] })), 400, 'invalid_value'],
    ['max_tokens over the limit', () => post(JSON.stringify({ ...good(), max_tokens: 100000 })), 400, 'invalid_value'],
    ['n = 2', () => post(JSON.stringify({ ...good(), n: 2 })), 400, 'invalid_value'],
    ['stop (not supported)', () => post(JSON.stringify({ ...good(), stop: ['\n'] })), 400, 'unsupported_parameter'],
    ['an array body', () => post('[1,2,3]'), 400, 'invalid_value'],
    ['GET on chat completions', async () => {
      const res = await fetch(`${serve.url}/v1/chat/completions`);
      return { status: res.status, json: await res.json() };
    }, 405, 'method_not_allowed'],
    ['an unknown route', async () => {
      const res = await fetch(`${serve.url}/v1/embeddings`, { method: 'POST' });
      return { status: res.status, json: await res.json() };
    }, 404, 'unknown_route'],
  ];
  for (const [name, send, status, code] of cases) {
    test(name, async () => {
      const r = await send();
      assert.equal(r.status, status, JSON.stringify(r.json));
      assertErrorShape(r.json, code);
      await assertAlive();
    });
  }
});

describe('an in-process server', () => {
  test('--api-key: requests without it get a 401, with it an answer; /health needs none', async () => {
    const s = await startServer({ model, modelName: NAME, port: 0, apiKey: 'sekret' });
    try {
      const wrong = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'nope', maxRetries: 0 });
      await assert.rejects(wrong.models.list(), (e: any) => e.status === 401 && e.code === 'invalid_api_key');
      const right = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'sekret', maxRetries: 0 });
      const r = await right.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: TOKENS });
      assert.equal(r.choices[0].message.content, await engineAnswer(png));
      assert.equal((await fetch(`${s.url}/health`)).status, 200);
      assert.ok(s.url.startsWith('http://127.0.0.1:'), 'loopback by default');
    } finally {
      await s.close();
    }
  });

  test('--allow-remote-images fetches http images (a loopback server here), refusing non-images and oversize', async () => {
    const images = createServer((req, res) => {
      if (req.url === '/a.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(png);
      if (req.url === '/big.png') return res.writeHead(200, { 'content-type': 'image/png' }).end(Buffer.alloc(300_000));
      res.writeHead(200, { 'content-type': 'text/html' }).end('<html>');
    });
    await new Promise<void>((r) => images.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(images.address() as any).port}`;
    const s = await startServer({ model, modelName: NAME, port: 0, allowRemoteImages: true, maxImageBytes: 200_000 });
    try {
      const c = new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'x', maxRetries: 0 });
      const r = await c.chat.completions.create({ model: NAME, messages: userWith(`${base}/a.png`), max_tokens: TOKENS });
      assert.equal(r.choices[0].message.content, await engineAnswer(png));
      await assert.rejects(c.chat.completions.create({ model: NAME, messages: userWith(`${base}/page`) }), (e: any) => e.status === 400 && e.code === 'invalid_image_url');
      await assert.rejects(c.chat.completions.create({ model: NAME, messages: userWith(`${base}/big.png`) }), (e: any) => e.status === 413 && e.code === 'image_too_large');
    } finally {
      await s.close();
      images.close();
    }
  });

  test('a full queue answers 429 instead of growing', async () => {
    const s = await startServer({ model, modelName: NAME, port: 0, maxBatch: 1, maxQueue: 1 });
    try {
      const body = JSON.stringify({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: 24 });
      const send = () => fetch(`${s.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then((r) => r.status);
      const statuses = await Promise.all([send(), send(), send(), send()]);
      assert.ok(statuses.includes(429), `some refused: ${statuses}`);
      assert.ok(statuses.includes(200), `some answered: ${statuses}`);
    } finally {
      await s.close();
    }
  });
});

describe('SIGTERM', () => {
  test('a running streamed answer finishes, then the process exits 0', { timeout: 60_000 }, async () => {
    const stream = await client.chat.completions.create({ model: NAME, messages: userWith(dataUrl(png)), max_tokens: 48, stream: true });
    let text = '';
    let finish: string | null = null;
    let signalled = false;
    for await (const c of stream) {
      if (!signalled) {
        serve.child.kill('SIGTERM');
        signalled = true;
      }
      text += c.choices[0]?.delta.content ?? '';
      finish = c.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'length', 'the answer ran to its end');
    assert.ok(text.length > 0);
    assert.equal(await serve.exited, 0, serve.stderr());
    assert.match(serve.stderr(), /stopped/);
  });
});
