// The remote backend (src/remote/) against a real `llava serve` on the tiny fixture model: answers equal
// the engine's own, streaming and not; retries with backoff on 5xx but not on 4xx; image headers read
// without decoding; and a caption job sent N-at-a-time whose server is killed mid-batch, both when the
// server comes back (the job rides it out) and when it does not (a rerun finishes): every caption
// complete, none lost, none duplicated, each equal to the local engine's caption.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server } from 'node:http';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { modelCaptionBackend, runCaptionJob, sidecarPath } from '../../src/captioning/index';
import { RemoteClient, imageSize, remoteCaptionBackend, remoteGeometry, sniffImageType } from '../../src/remote/index';
import { ensureFixtures, fixtureDir } from '../fixtures/index';
import { startLlavaServe, type ServeProcess } from '../helpers/llavaServe';

const NAME = 'tiny-llava';
const TOKENS = 10;
let model: LlavaModel;
let work: string;
let images: string[]; // 16 good images
let expected: Map<string, string>; // image -> the local engine's caption

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

async function localAnswer(bytes: Buffer, text: string): Promise<string> {
  let out = '';
  for await (const ev of model.generate([{ role: 'user', text, images: [{ bytes: new Uint8Array(bytes), name: 'x' }] }], { maxNewTokens: TOKENS })) {
    if (ev.type === 'done') out = ev.text;
  }
  return out;
}

function copyImages(name: string): { dir: string; paths: string[] } {
  const dir = path.join(work, name);
  mkdirSync(dir);
  const paths = images.map((p) => {
    const to = path.join(dir, path.basename(p));
    writeFileSync(to, readFileSync(p));
    return to;
  });
  writeFileSync(path.join(dir, 'broken.png'), 'not a png');
  return { dir, paths };
}

function records(file: string): Record<string, any>[] {
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

before(async () => {
  await ensureFixtures();
  work = mkdtempSync(path.join(os.tmpdir(), 'llava-remote-'));
  const src = path.join(work, 'src');
  mkdirSync(src);
  images = [];
  for (let i = 0; i < 16; i++) {
    const w = 20 + i * 3;
    const h = 18 + ((i * 5) % 30);
    const pixels = Buffer.alloc(w * h * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 5) + i * 17) & 255;
    const file = path.join(src, `img${String(i).padStart(2, '0')}.${i % 2 ? 'jpg' : 'png'}`);
    await sharp(pixels, { raw: { width: w, height: h, channels: 3 } }).toFormat(i % 2 ? 'jpeg' : 'png').toFile(file);
    images.push(file);
  }
  model = await loadModel(fixtureDir(NAME), { provider: 'cpu', variant: 'fp32', threads: 1 });
  // what the same model captions locally: the remote captions must be these, whatever the server went through
  const local = await runCaptionJob(modelCaptionBackend(model), { images, output: 'jsonl', manifest: path.join(work, 'local.jsonl'), batchSize: 4, maxNewTokens: TOKENS });
  assert.equal(local.captioned, 16);
  expected = new Map(records(path.join(work, 'local.jsonl')).map((r) => [path.basename(r.path), r.caption]));
});

after(async () => {
  await model?.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('RemoteClient against llava serve', () => {
  let serve: ServeProcess;
  let client: RemoteClient;
  before(async () => {
    serve = await startLlavaServe(fixtureDir(NAME), ['--api-key', 'k3y']);
    client = new RemoteClient({ baseUrl: `${serve.url}/v1`, model: NAME, apiKey: 'k3y', retries: 0 });
  });
  after(async () => {
    serve.child.kill('SIGTERM');
    assert.equal(await serve.exited, 0);
  });

  test('lists the model; answers equal the engine, streamed or not', async () => {
    assert.deepEqual(await client.models(), [NAME]);
    const bytes = readFileSync(images[3]);
    const want = await localAnswer(bytes, 'What is this?');
    const turns = [{ role: 'user' as const, text: 'What is this?', images: [{ path: images[3] }] }];
    const plain = await client.chat(turns, { maxNewTokens: TOKENS });
    assert.equal(plain.text, want);
    assert.equal(plain.newTokens, TOKENS);
    const deltas: string[] = [];
    const streamed = await client.chat(turns, { maxNewTokens: TOKENS, onDelta: (t) => deltas.push(t) });
    assert.equal(streamed.text, want);
    assert.equal(deltas.join(''), want);
    assert.ok(deltas.length > 2);
    assert.equal(streamed.finishReason, 'length');
  });

  test('a wrong key is a REMOTE error with its status; a non-image is refused before any request', async () => {
    const wrong = new RemoteClient({ baseUrl: `${serve.url}/v1`, model: NAME, apiKey: 'nope', retries: 3, backoffMs: 1 });
    await assert.rejects(wrong.chat([{ role: 'user', text: 'x' }]), (e: any) => e.code === 'REMOTE' && e.status === 401);
    await assert.rejects(client.chat([{ role: 'user', text: 'x', images: [{ bytes: new Uint8Array([1, 2, 3, 4]), name: 'junk.png' }] }]), (e: any) => e.code === 'IMAGE_DECODE' && /junk\.png/.test(e.message));
    // a PNG header over garbage passes the sniff: the server's refusal comes back as IMAGE_DECODE too
    const fake = Buffer.concat([readFileSync(images[0]).subarray(0, 16), Buffer.alloc(64, 7)]);
    await assert.rejects(client.chat([{ role: 'user', text: 'x', images: [{ bytes: new Uint8Array(fake), name: 'fake.png' }] }]), (e: any) => e.code === 'IMAGE_DECODE');
  });
});

describe('retries', () => {
  let fake: Server;
  let base: string;
  let hits = 0;
  let script: number[] = [];
  before(async () => {
    fake = createServer((req, res) => {
      req.resume();
      hits++;
      const status = script.shift() ?? 200;
      if (status !== 200) return res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: `status ${status}`, code: 'x' } }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: 'ok' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 1 } }));
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(fake.address() as net.AddressInfo).port}/v1`;
  });
  after(() => fake.close());

  test('503 and 429 are retried with backoff until an answer', async () => {
    hits = 0;
    script = [503, 429, 502];
    const started = performance.now();
    const a = await new RemoteClient({ baseUrl: base, model: 'm', retries: 5, backoffMs: 40 }).chat([{ role: 'user', text: 'hi' }]);
    assert.equal(a.text, 'ok');
    assert.equal(hits, 4);
    assert.ok(performance.now() - started >= 40 + 80 + 160 - 5, 'waited 40, 80, 160 ms between attempts');
  });

  test('a 400 is final; retries run out on a server that keeps failing', async () => {
    hits = 0;
    script = [400];
    await assert.rejects(new RemoteClient({ baseUrl: base, model: 'm', retries: 5, backoffMs: 1 }).chat([{ role: 'user', text: 'hi' }]), (e: any) => e.status === 400);
    assert.equal(hits, 1);
    hits = 0;
    script = [500, 500, 500, 500];
    await assert.rejects(new RemoteClient({ baseUrl: base, model: 'm', retries: 2, backoffMs: 1 }).chat([{ role: 'user', text: 'hi' }]), (e: any) => e.status === 500);
    assert.equal(hits, 3);
  });

  test('a server that is not there is a REMOTE error (status 0) after the retries', async () => {
    const c = new RemoteClient({ baseUrl: `http://127.0.0.1:${await freePort()}/v1`, model: 'm', retries: 1, backoffMs: 1 });
    await assert.rejects(c.chat([{ role: 'user', text: 'hi' }]), (e: any) => e.code === 'REMOTE' && e.status === 0 && /ECONNREFUSED/.test(e.message));
  });
});

describe('image headers', () => {
  test('type and displayed size without decoding (EXIF orientation 6 swaps width and height)', async () => {
    const png = await sharp({ create: { width: 37, height: 21, channels: 3, background: '#123' } }).png().toBuffer();
    const webp = await sharp({ create: { width: 50, height: 11, channels: 3, background: '#123' } }).webp().toBuffer();
    const rotated = await sharp({ create: { width: 40, height: 10, channels: 3, background: '#123' } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const gif = await sharp({ create: { width: 9, height: 7, channels: 3, background: '#123' } }).gif().toBuffer();
    assert.deepEqual(imageSize(png), { width: 37, height: 21 });
    assert.deepEqual(imageSize(webp), { width: 50, height: 11 });
    assert.deepEqual(imageSize(rotated), { width: 10, height: 40 });
    assert.deepEqual(imageSize(gif), { width: 9, height: 7 });
    assert.equal(sniffImageType(new TextEncoder().encode('hello')), undefined);
    assert.equal(imageSize(png.subarray(0, 10)), undefined);
  });

  test('pad geometry centres the image in a square', () => {
    const g = remoteGeometry('pad', 200, 100, 336);
    assert.equal(g.padTop, 50);
    assert.equal(g.padLeft, 0);
    assert.equal(g.scaleX, 336 / 200);
  });
});

describe('a caption job through the remote backend', () => {
  async function runJob(dir: string, paths: string[], url: string, extra: { retries: number; backoffMs: number }) {
    const client = new RemoteClient({ baseUrl: `${url}/v1`, model: NAME, ...extra });
    return runCaptionJob(remoteCaptionBackend(client), {
      images: [...paths, path.join(dir, 'broken.png')], output: 'sidecar', manifest: path.join(dir, 'run.jsonl'), batchSize: 4, maxNewTokens: TOKENS,
    });
  }

  function assertComplete(dir: string): void {
    const recs = records(path.join(dir, 'run.jsonl'));
    const ok = recs.filter((r) => !r.error);
    const names = ok.map((r) => path.basename(r.path)).sort();
    assert.deepEqual(names, [...expected.keys()].sort(), 'one successful record per image, none missing or twice');
    for (const r of ok) {
      const name = path.basename(r.path);
      assert.equal(r.caption, expected.get(name), `${name}: the local engine's caption`);
      assert.equal(readFileSync(sidecarPath(path.join(dir, name)), 'utf8'), r.caption, `${name}: sidecar complete`);
    }
    assert.ok(recs.some((r) => /broken\.png$/.test(r.path) && r.error.startsWith('IMAGE_DECODE')), 'the broken file failed without a request');
    assert.deepEqual(readdirSync(dir).filter((n) => n.includes('llava-tmp')), [], 'no temp files left');
  }

  test('the server is killed mid-batch and restarted: the job rides it out', { timeout: 120_000 }, async () => {
    const { dir, paths } = copyImages('restart');
    const port = await freePort();
    let serve = await startLlavaServe(fixtureDir(NAME), ['--port', String(port)]);
    const url = serve.url;
    const job = runJob(dir, paths, url, { retries: 8, backoffMs: 200 });
    while (paths.filter((p) => existsSync(sidecarPath(p))).length < 3) await new Promise((r) => setTimeout(r, 5));
    serve.child.kill('SIGKILL');
    await serve.exited;
    const atKill = paths.filter((p) => existsSync(sidecarPath(p))).length;
    assert.ok(atKill < paths.length, 'killed mid-way');
    serve = await startLlavaServe(fixtureDir(NAME), ['--port', String(port)]);
    try {
      const summary = await job;
      assert.equal(summary.captioned, 16);
      assert.equal(summary.failed.length, 1);
      assertComplete(dir);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  });

  test('the server is killed and stays down: the images in flight fail, a rerun finishes the rest', { timeout: 120_000 }, async () => {
    const { dir, paths } = copyImages('rerun');
    let serve = await startLlavaServe(fixtureDir(NAME));
    const job = runJob(dir, paths, serve.url, { retries: 1, backoffMs: 20 });
    while (paths.filter((p) => existsSync(sidecarPath(p))).length < 3) await new Promise((r) => setTimeout(r, 5));
    serve.child.kill('SIGKILL');
    await serve.exited;
    const first = await job;
    assert.ok(first.captioned >= 3 && first.captioned < 16, `some captioned before the kill (${first.captioned})`);
    assert.ok(first.failed.some((f) => f.code === 'REMOTE'), 'the rest failed as REMOTE errors');
    serve = await startLlavaServe(fixtureDir(NAME));
    try {
      const second = await runJob(dir, paths, serve.url, { retries: 1, backoffMs: 20 });
      assert.equal(second.skipped, first.captioned, 'what was captioned is skipped');
      assert.equal(first.captioned + second.captioned, 16);
      assertComplete(dir);
    } finally {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  });
});
