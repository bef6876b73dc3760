// The vscode-free half of the model store (src/hub/modelLocation.ts): setting parsing, catalog and
// Hub-repo resolution, folder layout (checked against the real downloader over the fake Hub), the
// local-folder check and the size/progress wording.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { loadCatalog, parseCatalog, type Catalog } from '../../src/hub/catalog';
import { downloadPlan } from '../../src/hub/download';
import { planFromHub } from '../../src/hub/listing';
import { FAKE_CDN_CA, startFakeHub, type FakeHub } from '../helpers/fakeHub';
import {
  BUILTIN_MODEL_LABEL,
  BUILTIN_MODEL_SETTING,
  builtinModelFolder,
  catalogModelFolder,
  checkLocalModelFolder,
  findCatalogEntry,
  formatModelSetting,
  formatProgress,
  formatSize,
  missingModelFiles,
  modelsRootFor,
  parseModelSetting,
  progressIncrement,
  rememberFolder,
  resolveHubModel,
} from '../../src/hub/modelLocation';

const HOME = path.join(path.sep, 'home', 'ada');

/** A small catalog written for these tests. */
function testCatalog(): Catalog {
  const model = (id: string, repo: string) => ({
    id,
    label: `Label ${id}`,
    repo,
    revision: 'main',
    pinned: false,
    files: [],
    boxFrame: 'norm1',
    prompts: { find: 'find {phrase}', describeRegion: 'describe {region}', region: '[{x1}, {y1}, {x2}, {y2}]' },
    licence: 'apache-2.0',
    homepage: `https://huggingface.co/${repo}`,
  });
  return parseCatalog(
    { schemaVersion: 2, defaultModel: 'tiny-a', models: [model('tiny-a', 'Org/Tiny-A'), model('tiny-b', 'org/tiny-b')] },
    'test',
  );
}

describe('parseModelSetting', () => {
  test('absolute POSIX and Windows paths are folders on every OS', () => {
    assert.deepEqual(parseModelSetting('/models/llava', HOME), { kind: 'folder', path: path.normalize('/models/llava') });
    // a drive letter contains ':' but must not be read as "<id>:<variant>"
    assert.equal(parseModelSetting('C:\\models\\llava', HOME).kind, 'folder');
    assert.equal(parseModelSetting('D:/models/llava', HOME).kind, 'folder');
    assert.equal(parseModelSetting('\\\\server\\share\\llava', HOME).kind, 'folder');
  });

  test('~ expands to the home folder', () => {
    assert.deepEqual(parseModelSetting('~/models/x', HOME), { kind: 'folder', path: path.join(HOME, 'models/x') });
  });

  test('ids, repos and variants (one for all parts, or per part)', () => {
    assert.deepEqual(parseModelSetting('nanollava-1.5', HOME), { kind: 'catalog', name: 'nanollava-1.5' });
    assert.deepEqual(parseModelSetting(' onnx-community/nanoLLaVA-1.5 ', HOME), { kind: 'catalog', name: 'onnx-community/nanoLLaVA-1.5' });
    assert.deepEqual(parseModelSetting('nanollava-1.5:fp16', HOME), { kind: 'catalog', name: 'nanollava-1.5', variant: 'fp16' });
    assert.deepEqual(parseModelSetting('nanollava-1.5:vision=fp16,decoder=q4', HOME), { kind: 'catalog', name: 'nanollava-1.5', variant: 'vision=fp16,decoder=q4' });
    // a relative path is not a folder: settings have no working directory to resolve it against
    assert.equal(parseModelSetting('models/x', HOME).kind, 'catalog');
  });

  test('`builtin` (any case, spaces around) is the model shipped inside the extension, not a catalog name', () => {
    for (const v of ['builtin', ' builtin ', 'Builtin', 'BUILTIN']) assert.deepEqual(parseModelSetting(v, HOME), { kind: 'builtin' }, v);
    // only the bare word: a repo, a folder or a relative path that merely contains it is what it always was
    assert.deepEqual(parseModelSetting('someone/builtin', HOME), { kind: 'catalog', name: 'someone/builtin' });
    assert.deepEqual(parseModelSetting('/opt/models/builtin', HOME), { kind: 'folder', path: path.normalize('/opt/models/builtin') });
    assert.equal(parseModelSetting('builtin-2', HOME).kind, 'catalog');
    // it is not a folder: llava.modelsFolder refuses it like any other non-path
    assert.ok(typeof modelsRootFor('builtin', '/gs', HOME) === 'object');
  });

  test('the built-in model is written as `builtin` (never a path into the versioned extension folder) and read back', () => {
    assert.equal(BUILTIN_MODEL_SETTING, 'builtin');
    assert.equal(formatModelSetting({ kind: 'builtin' }), 'builtin');
    assert.deepEqual(parseModelSetting(formatModelSetting({ kind: 'builtin' }), HOME), { kind: 'builtin' });
    const ext = path.join(path.sep, 'home', 'ada', '.vscode', 'extensions', 'llava.llava-vscode-0.3.0-linux-x64');
    assert.equal(builtinModelFolder(ext), path.join(ext, 'models', 'builtin'));
    assert.equal(BUILTIN_MODEL_LABEL, 'Built-in demo model (shapes)');
  });

  test('formatModelSetting round-trips through parse and resolve', () => {
    const catalog = testCatalog();
    const entry = catalog.models[0];
    assert.equal(formatModelSetting({ entry, repo: entry.repo }), 'tiny-a', 'no pinned variant: chosen from what exists');
    for (const choice of ['fp16', { vision: 'fp16', decoder: 'q4' }] as const) {
      const ref = parseModelSetting(formatModelSetting({ entry, repo: entry.repo }, choice), HOME);
      assert.equal(ref.kind, 'catalog');
      const r = resolveHubModel(catalog, ref as { name: string; variant?: string }, '/root');
      assert.ok(!('error' in r));
      assert.equal(r.entry, entry);
      assert.deepEqual(r.choice, choice);
    }
  });
});

describe('catalog resolution', () => {
  test('by id or by repo, case-insensitively', () => {
    const catalog = testCatalog();
    assert.equal(findCatalogEntry(catalog, 'tiny-b')?.id, 'tiny-b');
    assert.equal(findCatalogEntry(catalog, 'org/tiny-a')?.id, 'tiny-a');
    assert.equal(findCatalogEntry(catalog, 'TINY-B')?.id, 'tiny-b');
    assert.equal(findCatalogEntry(catalog, 'org/other'), undefined);
  });

  test('unknown model and unknown variant are explained; any owner/repo is a Hub model', () => {
    const catalog = testCatalog();
    const unknown = resolveHubModel(catalog, { name: 'nope' }, '/root');
    assert.ok('error' in unknown && /tiny-a, tiny-b/.test(unknown.error));
    const badVariant = resolveHubModel(catalog, { name: 'tiny-a', variant: 'int3' }, '/root');
    assert.ok('error' in badVariant && /"int3"/.test(badVariant.error) && /q4/.test(badVariant.error));
    const other = resolveHubModel(catalog, { name: 'someone/llava-thing', variant: 'decoder=q4' }, '/root');
    assert.ok(!('error' in other));
    assert.equal(other.entry, undefined);
    assert.equal(other.folder, path.join('/root', 'someone--llava-thing'));
    assert.deepEqual(other.choice, { decoder: 'q4' });
  });

  test("the setting's default (a repo name) names a model of the bundled catalog", () => {
    // package.json's default for llava.model is the Hub repo, while catalog ids are short names.
    const catalog = loadCatalog();
    const entry = findCatalogEntry(catalog, 'onnx-community/nanoLLaVA-1.5');
    assert.ok(entry, 'onnx-community/nanoLLaVA-1.5 is in models/catalog.json');
    for (const m of catalog.models) {
      assert.equal(findCatalogEntry(catalog, m.id), m);
      assert.equal(findCatalogEntry(catalog, m.repo), m);
    }
  });

  test('modelsRootFor: global storage by default, absolute paths only', () => {
    assert.equal(modelsRootFor('', '/gs', HOME), path.join('/gs', 'models'));
    assert.equal(modelsRootFor('/data/models', '/gs', HOME), path.normalize('/data/models'));
    assert.equal(modelsRootFor('~/m', '/gs', HOME), path.join(HOME, 'm'));
    const rel = modelsRootFor('models', '/gs', HOME);
    assert.ok(typeof rel !== 'string' && /absolute/.test(rel.error));
  });
});

describe('folder layout agrees with the downloader', () => {
  let hub: FakeHub;
  let root: string;
  const files = [
    { path: 'config.json', data: Buffer.from('{"model_type":"llava"}'), lfs: false },
    { path: 'preprocessor_config.json', data: Buffer.from('{}'), lfs: false },
    { path: 'tokenizer.json', data: Buffer.from('{}'), lfs: false },
    { path: 'onnx/vision_encoder_q4.onnx', data: Buffer.alloc(1000, 1), lfs: true },
    { path: 'onnx/embed_tokens_q4.onnx', data: Buffer.alloc(1000, 2), lfs: true },
    { path: 'onnx/decoder_model_merged_q4.onnx', data: Buffer.alloc(3000, 7), lfs: true },
  ];

  before(async () => {
    root = await mkdtemp(path.join(tmpdir(), 'llava-store-'));
    hub = await startFakeHub({ repo: 'org/tiny-b', files });
  });
  after(async () => {
    await hub.close();
    await rm(root, { recursive: true, force: true });
  });

  test('missing before, complete after, missing again when a file goes', async () => {
    const catalog = testCatalog();
    const entry = catalog.models[1];
    const folder = catalogModelFolder(root, entry);

    assert.deepEqual(await missingModelFiles(folder), ['.llava-download.json']);
    const plan = await planFromHub({ repo: entry.repo, revision: 'main', entry }, { endpoint: hub.endpoint });
    const returned = await downloadPlan(plan, root, { endpoint: hub.endpoint, ca: FAKE_CDN_CA, retries: 0 });
    assert.equal(returned, folder, 'downloadPlan() puts the model where the store looks for it');
    assert.deepEqual(await missingModelFiles(folder), []);

    // a file that went away, or was replaced by one of another size, is missing again
    await unlink(path.join(folder, 'onnx', 'decoder_model_merged_q4.onnx'));
    assert.deepEqual(await missingModelFiles(folder), ['onnx/decoder_model_merged_q4.onnx']);
    await writeFile(path.join(folder, 'onnx', 'decoder_model_merged_q4.onnx'), Buffer.alloc(10));
    assert.deepEqual(await missingModelFiles(folder), ['onnx/decoder_model_merged_q4.onnx']);
  });

  test('files on disk without the manifest do not count (an interrupted or foreign copy)', async () => {
    const entry = testCatalog().models[0];
    const folder = catalogModelFolder(root, entry);
    await mkdir(path.join(folder, 'onnx'), { recursive: true });
    await writeFile(path.join(folder, 'config.json'), Buffer.alloc(1_000));
    await writeFile(path.join(folder, 'onnx', 'decoder_model_merged_q4.onnx'), Buffer.alloc(2_500_000));
    assert.deepEqual(await missingModelFiles(folder), ['.llava-download.json']);
  });
});

describe('checkLocalModelFolder', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'llava-local-'));
  });
  after(async () => rm(dir, { recursive: true, force: true }));

  test('names what is wrong, accepts a Hub-layout folder', async () => {
    const m = path.join(dir, 'model');
    assert.match((await checkLocalModelFolder(m)) ?? '', /does not exist/);
    await writeFile(path.join(dir, 'file'), 'x');
    assert.match((await checkLocalModelFolder(path.join(dir, 'file'))) ?? '', /not a folder/);
    await mkdir(m);
    assert.match((await checkLocalModelFolder(m)) ?? '', /config\.json/);
    await writeFile(path.join(m, 'config.json'), '{}');
    assert.match((await checkLocalModelFolder(m)) ?? '', /onnx\//);
    await mkdir(path.join(m, 'onnx'));
    await writeFile(path.join(m, 'onnx', 'README.txt'), '');
    assert.match((await checkLocalModelFolder(m)) ?? '', /no \.onnx files/);
    await writeFile(path.join(m, 'onnx', 'vision_encoder.onnx'), '');
    assert.equal(await checkLocalModelFolder(m), undefined);
  });
});

describe('sizes and progress', () => {
  test('formatSize says "size unknown" rather than guessing', () => {
    assert.equal(formatSize(undefined), 'size unknown');
    assert.equal(formatSize(812_000_000), '812 MB');
    assert.equal(formatSize(3_400_000), '3.4 MB');
    assert.equal(formatSize(0), '0.0 MB');
  });

  test('formatProgress: MB done / total and a floored percentage', () => {
    // 12.3 of 812 MB is 1.51 %: floored so 100 % appears only when complete
    assert.equal(formatProgress(12_300_000, 812_000_000), '12.3 / 812.0 MB (1%)');
    assert.equal(formatProgress(811_999_999, 812_000_000), '812.0 / 812.0 MB (99%)');
    assert.equal(formatProgress(5_000_000, undefined), '5.0 MB');
  });

  test('progress increments add up to the percentage done and never go negative', () => {
    const total = 1_000;
    let shown = 0;
    for (const bytes of [0, 100, 100, 350, 300 /* a restarted file */, 999, 1_000]) {
      const inc = progressIncrement(shown, bytes, total);
      assert.ok(inc >= 0);
      shown += inc;
    }
    assert.equal(shown, 100);
    assert.equal(progressIncrement(0, 500, undefined), 0, 'no total, no bar');
  });

  test('rememberFolder: most recent first, no duplicates, bounded', () => {
    let list: string[] = [];
    for (const f of ['/a', '/b', '/c', '/a/', '/d', '/e', '/f']) list = rememberFolder(list, f, 5);
    assert.deepEqual(list, ['/f', '/e', '/d', '/a/', '/c']);
  });
});
