// downloadModel against a local fake Hub (test/helpers/fakeHub.ts): redirects to a CDN on another
// port, LFS checksums from headers, Range resume, failures injected by switches.
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadModel, readLock, LOCK_FILE, type DownloadProgress } from '../../src/hub/download';
import type { CatalogEntry } from '../../src/hub/catalog';
import { AbortedError, ChecksumError, DownloadError } from '../../src/core/errors';
import { startFakeHub, sha256, type FakeFile, type FakeHub } from '../helpers/fakeHub';

const REPO = 'test-org/tiny-llava';

function makeFiles(): FakeFile[] {
  return [
    { path: 'config.json', data: Buffer.from(JSON.stringify({ model_type: 'llava', n: randomBytes(8).toString('hex') })), lfs: false },
    { path: 'tokenizer.json', data: randomBytes(3000), lfs: false },
    { path: 'onnx/decoder_model_merged_q4.onnx', data: randomBytes(200_000), lfs: true },
    { path: 'onnx/vision_encoder_q4.onnx', data: randomBytes(50_000), lfs: true },
  ];
}

function entryFor(files: FakeFile[], overrides: Partial<CatalogEntry> = {}): CatalogEntry {
  return {
    id: 'tiny-llava',
    label: 'Tiny',
    repo: REPO,
    revision: 'main',
    pinned: false,
    files: files.filter((f) => !f.path.startsWith('onnx/')).map((f) => ({ path: f.path })),
    variants: { q4: { files: files.filter((f) => f.path.startsWith('onnx/')).map((f) => ({ path: f.path })) } },
    defaultVariant: 'q4',
    promptFormat: 'chatml',
    preprocess: 'resize',
    boxFrame: 'norm1',
    prompts: { find: '{phrase}', describeRegion: '{region}', region: '{x1},{y1},{x2},{y2}' },
    licence: 'apache-2.0',
    homepage: 'https://example.invalid',
    ...overrides,
  };
}

const BIG = 'onnx/decoder_model_merged_q4.onnx';

describe('downloadModel', () => {
  let hub: FakeHub;
  let files: FakeFile[];
  let root: string;

  beforeEach(async () => {
    files = makeFiles();
    hub = await startFakeHub({ repo: REPO, files });
    root = mkdtempSync(join(tmpdir(), 'llava-dl-'));
  });
  afterEach(async () => {
    await hub.close();
    rmSync(root, { recursive: true, force: true });
  });

  const fileIn = (folder: string, path: string) => join(folder, ...path.split('/'));
  const assertAllCorrect = (folder: string) => {
    for (const f of files) assert.ok(readFileSync(fileIn(folder, f.path)).equals(f.data), `${f.path} differs`);
  };

  test('downloads every file, verifies each, writes the lock file, keeps the token off the CDN', async () => {
    const events: DownloadProgress[] = [];
    const folder = await downloadModel(entryFor(files), 'q4', root, {
      endpoint: hub.endpoint,
      token: 'hf_secret',
      onProgress: (p) => events.push(p),
      progressIntervalMs: 0,
    });
    assert.equal(folder, join(root, 'tiny-llava'));
    assertAllCorrect(folder);
    assert.ok(!files.some((f) => existsSync(`${fileIn(folder, f.path)}.part`)));

    const lock = await readLock(folder);
    assert.ok(lock);
    assert.equal(lock.revision, 'main');
    assert.equal(lock.files[BIG].verifiedBy, 'hub-sha256');
    assert.equal(lock.files[BIG].sha256, sha256(files[2].data));
    assert.equal(lock.files['config.json'].verifiedBy, 'git-blob-sha1');
    assert.equal(lock.files[BIG].commit, hub.commit);

    // the CDN is another host: it must not receive the token; the Hub must
    const cdn = hub.requests.filter((r) => r.server === 'cdn');
    assert.equal(cdn.length, 2);
    assert.ok(cdn.every((r) => r.authorization === undefined));
    assert.ok(hub.requests.filter((r) => r.server === 'hub').every((r) => r.authorization === 'Bearer hf_secret'));

    const total = files.reduce((s, f) => s + f.data.length, 0);
    assert.equal(events.at(-1)!.bytes, total);
    // no sizes in the catalog: the total comes from the Hub's HEAD answers, before any byte
    assert.ok(events.every((e) => e.total === total), 'every event knows the total');
    assert.ok(hub.requests.filter((r) => r.method === 'HEAD').every((r) => r.server === 'hub'));
    for (let i = 1; i < events.length; i++) assert.ok(events[i].bytes >= events[i - 1].bytes, 'overall bytes never go back');
  });

  test('a connection dropped mid-file is resumed with a Range request', async () => {
    hub.switches.dropOnce.add(BIG);
    hub.switches.dropAfterBytes = 70_000;
    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    assertAllCorrect(folder);
    const ranged = hub.requests.filter((r) => r.server === 'cdn' && r.range);
    assert.deepEqual(ranged.map((r) => r.range), ['bytes=70000-']);
  });

  test('with no retries the failure keeps the .part, and the next call resumes it', async () => {
    hub.switches.dropOnce.add(BIG);
    hub.switches.dropAfterBytes = 12_345;
    await assert.rejects(downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint, retries: 0 }), (err) => {
      assert.ok(err instanceof DownloadError);
      assert.match(err.message, /decoder_model_merged_q4\.onnx/);
      return true;
    });
    const final = fileIn(join(root, 'tiny-llava'), BIG);
    assert.equal(existsSync(final), false);
    assert.equal(statSync(`${final}.part`).size, 12_345);

    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint, retries: 0 });
    assertAllCorrect(folder);
    assert.ok(hub.requests.some((r) => r.server === 'cdn' && r.range === 'bytes=12345-'));
  });

  test('a server that ignores Range restarts the file from byte 0 and still verifies', async () => {
    hub.switches.dropOnce.add(BIG);
    hub.switches.dropAfterBytes = 5000;
    hub.switches.ignoreRange = true;
    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    assertAllCorrect(folder);
    assert.ok(hub.requests.some((r) => r.range === 'bytes=5000-'), 'it did ask for the rest');
  });

  test('a complete .part (crash before rename) is finished by a 416 without sending the body again', async () => {
    const folder = join(root, 'tiny-llava');
    mkdirSync(join(folder, 'onnx'), { recursive: true });
    for (const f of files) if (f.path !== BIG) writeFileSync(fileIn(folder, f.path), f.data);
    writeFileSync(`${fileIn(folder, BIG)}.part`, files[2].data);
    const before = hub.bytesSent();
    await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    assertAllCorrect(folder);
    // the other files are not in the lock, so they come again; the big one must not
    const sentForOthers = files.filter((f) => f.path !== BIG).reduce((s, f) => s + f.data.length, 0);
    assert.equal(hub.bytesSent() - before, sentForOthers);
    assert.ok(hub.requests.some((r) => r.range === `bytes=${files[2].data.length}-`));
  });

  test("a wrong LFS checksum throws ChecksumError and leaves nothing in place", async () => {
    hub.switches.wrongChecksum.add(BIG);
    await assert.rejects(downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint }), (err) => {
      assert.ok(err instanceof ChecksumError);
      assert.equal(err.actual, sha256(files[2].data));
      assert.match(err.file, /decoder_model_merged_q4\.onnx/);
      return true;
    });
    const final = fileIn(join(root, 'tiny-llava'), BIG);
    assert.equal(existsSync(final), false);
    assert.equal(existsSync(`${final}.part`), false);
  });

  test('a wrong git blob id on a small file throws ChecksumError', async () => {
    hub.switches.wrongChecksum.add('config.json');
    await assert.rejects(downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint }), ChecksumError);
    assert.equal(existsSync(join(root, 'tiny-llava', 'config.json')), false);
  });

  test("the catalog's sha256 wins over the Hub's header", async () => {
    const entry = entryFor(files);
    entry.variants.q4.files[0] = { path: BIG, sha256: sha256(Buffer.from('not the file')) };
    await assert.rejects(downloadModel(entry, 'q4', root, { endpoint: hub.endpoint }), (err) => {
      assert.ok(err instanceof ChecksumError);
      assert.equal(err.expected, sha256(Buffer.from('not the file')));
      return true;
    });
    const ok = entryFor(files);
    ok.variants.q4.files[0] = { path: BIG, sha256: sha256(files[2].data), size: files[2].data.length };
    const folder = await downloadModel(ok, 'q4', root, { endpoint: hub.endpoint });
    assert.equal((await readLock(folder))!.files[BIG].verifiedBy, 'catalog-sha256');
  });

  test('a missing file is a DownloadError that names it', async () => {
    hub.switches.missing.add('onnx/vision_encoder_q4.onnx');
    await assert.rejects(downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint }), (err) => {
      assert.ok(err instanceof DownloadError);
      assert.match(err.message, /test-org\/tiny-llava\/onnx\/vision_encoder_q4\.onnx/);
      assert.match(err.message, /404/);
      return true;
    });
  });

  test('abort mid-file leaves the .part and no final file; a later call resumes', async () => {
    hub.switches.chunkBytes = 8192;
    hub.switches.chunkDelayMs = 15;
    const ac = new AbortController();
    const run = downloadModel(entryFor(files), 'q4', root, {
      endpoint: hub.endpoint,
      signal: ac.signal,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (p.file === BIG && p.fileBytes >= 40_000) ac.abort();
      },
    });
    await assert.rejects(run, AbortedError);
    const final = fileIn(join(root, 'tiny-llava'), BIG);
    assert.equal(existsSync(final), false);
    const partSize = statSync(`${final}.part`).size;
    assert.ok(partSize > 0 && partSize < files[2].data.length, `part has ${partSize} bytes`);

    hub.switches.chunkBytes = 0;
    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    assertAllCorrect(folder);
    assert.ok(hub.requests.some((r) => r.range === `bytes=${partSize}-`));
  });

  test('already complete: no request, no bytes', async () => {
    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    const sent = hub.bytesSent();
    const requests = hub.requests.length;
    const events: DownloadProgress[] = [];
    await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint, onProgress: (p) => events.push(p) });
    assert.equal(hub.bytesSent(), sent);
    assert.equal(hub.requests.length, requests);
    assert.equal(events.at(-1)!.bytes, files.reduce((s, f) => s + f.data.length, 0));
    assert.ok(existsSync(join(folder, LOCK_FILE)));
  });

  test('a file changed on disk after download is fetched again', async () => {
    const folder = await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    writeFileSync(join(folder, 'tokenizer.json'), 'truncated');
    await downloadModel(entryFor(files), 'q4', root, { endpoint: hub.endpoint });
    assertAllCorrect(folder);
  });
});
