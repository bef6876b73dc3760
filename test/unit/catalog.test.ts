// The model catalog: the bundled models/catalog.json loads and follows our own rules, the
// validator names the offending field, and scripts/pin-catalog.ts pins against a fake Hub.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadCatalog, parseCatalog, findEntry, filesFor, CatalogError } from '../../src/hub/catalog';
import { downloadModel, readLock } from '../../src/hub/download';
import { findPrompt, parseBoxes } from '../../src/grounding/boxes';
import { pinCatalog } from '../../scripts/pin-catalog';
import { startFakeHub, sha256 } from '../helpers/fakeHub';

const bundledJson = () => JSON.parse(readFileSync(join(__dirname, '../../models/catalog.json'), 'utf8'));

describe('bundled catalog', () => {
  const catalog = loadCatalog();

  test('has the three models, nanoLLaVA-1.5 q4 as the default', () => {
    assert.deepEqual(catalog.models.map((m) => m.repo), [
      'onnx-community/nanoLLaVA-1.5',
      'llava-hf/llava-onevision-qwen2-0.5b-ov-hf',
      'llava-hf/llava-interleave-qwen-0.5b-hf',
    ]);
    const def = findEntry(catalog, catalog.defaultModel);
    assert.equal(def.repo, 'onnx-community/nanoLLaVA-1.5');
    assert.equal(def.defaultVariant, 'q4');
  });

  test('unpinned entries carry no invented checksums or sizes (only the pin script writes them)', () => {
    for (const m of catalog.models) {
      if (m.pinned) continue;
      for (const f of [...m.files, ...Object.values(m.variants).flatMap((v) => v.files)]) {
        assert.equal(f.sha256, undefined, `${m.id} ${f.path}`);
        assert.equal(f.size, undefined, `${m.id} ${f.path}`);
      }
    }
  });

  test('every variant names the three sessions of the transformers.js layout with one dtype suffix', () => {
    for (const m of catalog.models) {
      for (const [name, v] of Object.entries(m.variants)) {
        const suffix = name === 'fp32' ? '' : `_${name}`;
        assert.deepEqual(
          v.files.map((f) => f.path).sort(),
          ['decoder_model_merged', 'embed_tokens', 'vision_encoder'].map((s) => `onnx/${s}${suffix}.onnx`),
          `${m.id} ${name}`,
        );
      }
      assert.ok(m.files.some((f) => f.path === 'config.json') && m.files.some((f) => f.path === 'tokenizer.json'), m.id);
    }
  });

  test("referring prompts fill in, and the region template's output parses in the entry's frame", () => {
    for (const m of catalog.models) {
      assert.ok(findPrompt(m.prompts, 'the red button').endsWith('the red button'), m.id);
      const sample = m.prompts.region.replace('{x1}', '0.10').replace('{y1}', '0.20').replace('{x2}', '0.30').replace('{y2}', '0.40');
      if (m.boxFrame === 'norm1') assert.deepEqual(parseBoxes(sample, 'norm1')[0]?.box, [0.1, 0.2, 0.3, 0.4], m.id);
    }
  });

  test('filesFor = common files + the variant; an unknown variant names the known ones', () => {
    const m = findEntry(catalog, 'nanollava-1.5');
    const files = filesFor(m, 'q4').map((f) => f.path);
    assert.equal(files.length, m.files.length + 3);
    assert.ok(files.includes('onnx/decoder_model_merged_q4.onnx'));
    assert.throws(() => filesFor(m, 'q3'), (err) => err instanceof CatalogError && /q3.*known: q4/.test(err.message));
    assert.throws(() => findEntry(catalog, 'nope'), CatalogError);
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
    ['bad sha256', (j) => (j.models[0].variants.q4.files[0].sha256 = 'abc'), /models\[0\]\.variants\.q4\.files\[0\]\.sha256/],
    ['negative size', (j) => (j.models[0].files[0].size = -1), /models\[0\]\.files\[0\]\.size/],
    ['pinned without a commit', (j) => (j.models[0].pinned = true), /models\[0\]\.revision.*40-hex/],
    ['unknown frame', (j) => (j.models[2].boxFrame = 'norm100'), /models\[2\]\.boxFrame.*norm1000/],
    ['unknown default variant', (j) => (j.models[0].defaultVariant = 'q3'), /models\[0\]\.defaultVariant/],
    ['default model not listed', (j) => (j.defaultModel = 'gone'), /defaultModel/],
    ['duplicate id', (j) => (j.models[1].id = j.models[0].id), /models\[1\]\.id.*duplicate/],
    ['path escaping the repo', (j) => (j.models[0].files[0].path = '../etc/passwd'), /relative path/],
    ['file listed twice', (j) => j.models[0].files.push({ path: 'config.json' }), /listed twice/],
    ['prompt without placeholder', (j) => (j.models[0].prompts.find = 'Find it'), /prompts\.find.*\{phrase\}/],
    ['wrong schema version', (j) => (j.schemaVersion = 2), /schemaVersion/],
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
    { path: 'tokenizer.json', data: randomBytes(2000), lfs: false },
    { path: 'onnx/vision_encoder_q4.onnx', data: randomBytes(30_000), lfs: true },
    { path: 'onnx/embed_tokens_q4.onnx', data: randomBytes(20_000), lfs: true },
    { path: 'onnx/decoder_model_merged_q4.onnx', data: randomBytes(40_000), lfs: true },
  ];
  const catalogFor = () => {
    const j = bundledJson();
    const m = j.models[0];
    m.repo = REPO;
    m.files = [{ path: 'config.json' }, { path: 'tokenizer.json' }];
    m.variants = { q4: { files: files.filter((f) => f.lfs).map((f) => ({ path: f.path })) } };
    j.models = [m];
    j.defaultModel = m.id;
    return j;
  };

  test('fills revision, sizes and sha256; the pinned entry downloads with catalog-checked files', async () => {
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
      for (const f of filesFor(pinned, 'q4')) {
        const src = files.find((x) => x.path === f.path)!;
        assert.equal(f.sha256, sha256(src.data), f.path);
        assert.equal(f.size, src.data.length, f.path);
      }
      const folder = await downloadModel(pinned, 'q4', join(dir, 'models'), { endpoint: hub.endpoint });
      const lock = await readLock(folder);
      assert.ok(Object.values(lock!.files).every((f) => f.verifiedBy === 'catalog-sha256'));
      assert.equal(lock!.revision, hub.commit);
    } finally {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a listed file the Hub lacks is reported and nothing is written', async () => {
    const hub = await startFakeHub({ repo: REPO, files });
    hub.switches.missing.add('onnx/embed_tokens_q4.onnx');
    const dir = mkdtempSync(join(tmpdir(), 'llava-pin-'));
    try {
      const path = join(dir, 'catalog.json');
      const before = JSON.stringify(catalogFor(), null, 2);
      writeFileSync(path, before);
      const r = await pinCatalog(path, { endpoint: hub.endpoint });
      assert.equal(r.written, false);
      assert.deepEqual(Object.values(r.missing), [['onnx/embed_tokens_q4.onnx']]);
      assert.equal(readFileSync(path, 'utf8'), before);
    } finally {
      await hub.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
