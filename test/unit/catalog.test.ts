// The model catalog: the bundled models/catalog.json loads and follows our own rules, the
// validator names the offending field, and scripts/pin-catalog.ts pins against a fake Hub.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalog, parseCatalog, findEntry, CatalogError } from '../../src/hub/catalog';
import { downloadPlan } from '../../src/hub/download';
import { readManifest } from '../../src/hub/manifest';
import { planFromHub } from '../../src/hub/listing';
import { findPrompt, parseBoxes } from '../../src/grounding/boxes';
import { pinCatalog } from '../../scripts/pin-catalog';
import { FAKE_CDN_CA, startFakeHub, sha256 } from '../helpers/fakeHub';

const bundledJson = () => JSON.parse(readFileSync(join(__dirname, '../../models/catalog.json'), 'utf8'));

describe('bundled catalog', () => {
  const catalog = loadCatalog();

  test('has the three models, nanoLLaVA-1.5 as the default', () => {
    assert.deepEqual(catalog.models.map((m) => m.repo), [
      'onnx-community/nanoLLaVA-1.5',
      'llava-hf/llava-onevision-qwen2-0.5b-ov-hf',
      'llava-hf/llava-interleave-qwen-0.5b-hf',
    ]);
    const def = findEntry(catalog, catalog.defaultModel);
    assert.equal(def.repo, 'onnx-community/nanoLLaVA-1.5');
    assert.throws(() => findEntry(catalog, 'nope'), CatalogError);
  });

  test('unpinned entries carry no invented checksums, sizes or file names (the Hub listing decides)', () => {
    for (const m of catalog.models) {
      if (m.pinned) continue;
      assert.deepEqual(m.files, [], m.id);
    }
  });

  test('LLaVA-Interleave stays on its ONNX upload commit (its main moved after it)', () => {
    assert.equal(findEntry(catalog, 'llava-interleave-qwen-0.5b').revision, '08647831752d66cc51831ff4f2a476de6ba2af9c');
  });

  test("referring prompts fill in, and the region template's output parses in the entry's frame", () => {
    for (const m of catalog.models) {
      assert.ok(findPrompt(m.prompts, 'the red button').endsWith('the red button'), m.id);
      const sample = m.prompts.region.replace('{x1}', '0.10').replace('{y1}', '0.20').replace('{x2}', '0.30').replace('{y2}', '0.40');
      if (m.boxFrame === 'norm1') assert.deepEqual(parseBoxes(sample, 'norm1')[0]?.box, [0.1, 0.2, 0.3, 0.4], m.id);
    }
  });

});

describe('validation', () => {
  const broken = (edit: (j: any) => void) => {
    const j = bundledJson();
    edit(j);
    return () => parseCatalog(j, 'test.json');
  };
  const cases: [string, (j: any) => void, RegExp][] = [
    ['missing repo', (j) => delete j.models[0].repo, /models\[0\]\.repo/],
    ['bad repo', (j) => (j.models[1].repo = 'no-slash'), /models\[1\]\.repo/],
    ['bad sha256', (j) => (j.models[0].files = [{ path: 'config.json', sha256: 'abc' }]), /models\[0\]\.files\[0\]\.sha256/],
    ['negative size', (j) => (j.models[0].files = [{ path: 'config.json', size: -1 }]), /models\[0\]\.files\[0\]\.size/],
    ['pinned without a commit', (j) => (j.models[0].pinned = true), /models\[0\]\.revision.*40-hex/],
    ['unknown frame', (j) => (j.models[2].boxFrame = 'norm100'), /models\[2\]\.boxFrame.*norm1000/],
    ['a schema-1 field', (j) => (j.models[0].variants = {}), /models\[0\]\.variants.*no longer read/],
    ['preprocess is the folder\'s to say', (j) => (j.models[1].preprocess = 'pad'), /models\[1\]\.preprocess.*no longer read/],
    ['pinned file without sha256', (j) => ((j.models[0].pinned = true), (j.models[0].revision = 'a'.repeat(40)), (j.models[0].files = [{ path: 'config.json', size: 3 }])), /needs size and sha256/],
    ['default model not listed', (j) => (j.defaultModel = 'gone'), /defaultModel/],
    ['duplicate id', (j) => (j.models[1].id = j.models[0].id), /models\[1\]\.id.*duplicate/],
    ['path escaping the repo', (j) => (j.models[0].files = [{ path: '../etc/passwd' }]), /relative path/],
    ['file listed twice', (j) => (j.models[0].files = [{ path: 'config.json' }, { path: 'config.json' }]), /listed twice/],
    ['prompt without placeholder', (j) => (j.models[0].prompts.find = 'Find it'), /prompts\.find.*\{phrase\}/],
    ['wrong schema version', (j) => (j.schemaVersion = 1), /schemaVersion/],
  ];
  for (const [name, edit, re] of cases) {
    test(name, () => {
      assert.throws(broken(edit), (err) => err instanceof CatalogError && re.test(err.message) && err.message.startsWith('test.json'));
    });
  }

  test('the unedited bundled JSON passes (so the cases above fail for their edit only)', () => {
    assert.doesNotThrow(() => parseCatalog(bundledJson(), 'test.json'));
  });

  test('an unreadable catalog file is a CatalogError naming the path', () => {
    const dir = mkdtempSync(join(tmpdir(), 'llava-cat-'));
    try {
      const p = join(dir, 'catalog.json');
      writeFileSync(p, '{ not json');
      assert.throws(() => loadCatalog(p), (err) => err instanceof CatalogError && err.message.includes(p));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('scripts/pin-catalog.ts against the fake Hub', () => {
  const REPO = 'test-org/pin-me';
  const files = [
    { path: 'config.json', data: Buffer.from('{"model_type":"llava"}'), lfs: false },
    { path: 'preprocessor_config.json', data: Buffer.from('{}'), lfs: false },
    { path: 'README.md', data: Buffer.from('not a model file'), lfs: false },
    { path: 'onnx/decoder_model_merged_fp16.onnx', data: randomBytes(20_000), lfs: true },
    { path: 'tokenizer.json', data: randomBytes(2000), lfs: false },
    { path: 'onnx/vision_encoder_q4.onnx', data: randomBytes(30_000), lfs: true },
    { path: 'onnx/embed_tokens_q4.onnx', data: randomBytes(20_000), lfs: true },
    { path: 'onnx/decoder_model_merged_q4.onnx', data: randomBytes(40_000), lfs: true },
  ];
  const catalogFor = () => {
    const j = bundledJson();
    const m = j.models[0];
    m.repo = REPO;
    j.models = [m];
    j.defaultModel = m.id;
    return j;
  };

  test('fills revision, sizes and sha256 of every model file and every variant; the pinned entry downloads with catalog-checked files', async () => {
    const hub = await startFakeHub({ repo: REPO, files });
    const dir = mkdtempSync(join(tmpdir(), 'llava-pin-'));
    try {
      const path = join(dir, 'catalog.json');
      writeFileSync(path, JSON.stringify(catalogFor(), null, 2));
      const r = await pinCatalog(path, { endpoint: hub.endpoint });
      assert.equal(r.written, true);
      const pinned = loadCatalog(path).models[0];
      assert.equal(pinned.pinned, true);
      assert.equal(pinned.revision, hub.commit);
      assert.deepEqual(pinned.files.map((f) => f.path).sort(), files.filter((f) => f.path !== 'README.md').map((f) => f.path).sort());
      for (const f of pinned.files) {
        const src = files.find((x) => x.path === f.path)!;
        assert.equal(f.sha256, sha256(src.data), f.path);
        assert.equal(f.size, src.data.length, f.path);
      }
      const plan = await planFromHub({ repo: REPO, revision: pinned.revision, entry: pinned }, { endpoint: hub.endpoint });
      const folder = await downloadPlan(plan, join(dir, 'models'), { endpoint: hub.endpoint, ca: FAKE_CDN_CA });
      const lock = await readManifest(folder);
      assert.ok(Object.values(lock!.files).every((f) => f.verifiedBy === 'catalog-sha256'));
      assert.equal(lock!.revision, hub.commit);
      assert.equal(lock!.files['onnx/decoder_model_merged_fp16.onnx'], undefined, 'the CPU choice took q4');
    } finally {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a repository lacking a part is reported and nothing is written', async () => {
    const hub = await startFakeHub({ repo: REPO, files: files.filter((f) => !f.path.startsWith('onnx/embed_tokens')) });
    const dir = mkdtempSync(join(tmpdir(), 'llava-pin-'));
    try {
      const path = join(dir, 'catalog.json');
      const before = JSON.stringify(catalogFor(), null, 2);
      writeFileSync(path, before);
      const r = await pinCatalog(path, { endpoint: hub.endpoint });
      assert.equal(r.written, false);
      assert.equal(Object.values(r.missing).length, 1);
      assert.match(Object.values(r.missing)[0][0], /no variant of embed \(embed_tokens\*\.onnx\) exists/);
      assert.equal(readFileSync(path, 'utf8'), before);
    } finally {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
