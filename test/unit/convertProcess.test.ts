// The pieces of the extension's conversion flow that decide things, without a child process: the
// checkpoint's download plan from a listing (shards + index, or one file; ONNX repos unchanged), the
// dtype per provider, the sizes the user confirms, and the progress / error lines read from the child.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { AbortedError, ConvertError, DiskSpaceError, DownloadError } from '../../src/core';
import {
  LineSplitter, describeConvertFailure, estimateEta, formatEta, formatProgressLine, parseCliError, parseProgressLine, type ConvertProgressLine,
} from '../../src/convert-process';
import { conversionDtype, conversionOffer, loadCatalog, planCheckpointDownload, planDownload, type RepoListing } from '../../src/hub';

const COMMIT = 'a'.repeat(40);
const llava7b = loadCatalog().conversions.find((c) => c.id === 'llava-1.5-7b')!;
const SIDE = ['config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.json', 'tokenizer.model'];

function listing(paths: Record<string, number | undefined>): RepoListing {
  return { repo: 'llava-hf/llava-1.5-7b-hf', revision: 'main', commit: COMMIT, files: Object.entries(paths).map(([path, size]) => ({ path, ...(size !== undefined ? { size } : {}) })) };
}
const sharded = () => listing({
  ...Object.fromEntries(SIDE.map((p) => [p, 100])),
  '.gitattributes': 10, 'README.md': 10, 'pytorch_model.bin.index.json': 10, 'pytorch_model-00001-of-00003.bin': 5_000,
  'model.safetensors.index.json': 70_000,
  'model-00001-of-00003.safetensors': 4_000_000, 'model-00002-of-00003.safetensors': 4_000_000, 'model-00003-of-00003.safetensors': 2_000_000,
});

describe('the checkpoint plan', () => {
  test('sharded: side files, the index and every shard; nothing else (no .bin, no README)', () => {
    const plan = planCheckpointDownload(sharded(), llava7b, 'q4');
    const paths = plan.files.map((f) => f.path);
    assert.deepEqual(paths.slice(-4), ['model.safetensors.index.json', 'model-00001-of-00003.safetensors', 'model-00002-of-00003.safetensors', 'model-00003-of-00003.safetensors']);
    assert.deepEqual(new Set(paths.slice(0, -4)), new Set(SIDE));
    assert.equal(plan.totalBytes, 10 * 100 + 70_000 + 10_000_000);
    assert.equal(plan.id, 'llava-1.5-7b.checkpoint');
    assert.equal(plan.commit, COMMIT);
    assert.equal(plan.licence, llava7b.licence);
  });

  test('one model.safetensors without an index', () => {
    const plan = planCheckpointDownload(listing({ 'config.json': 1, 'tokenizer.json': 1, 'model.safetensors': 9 }), llava7b, 'q4');
    assert.deepEqual(plan.files.map((f) => f.path), ['config.json', 'tokenizer.json', 'model.safetensors']);
    assert.equal(plan.totalBytes, 11);
  });

  test('a size left out of the listing makes the total unknown (the offer falls back to the catalog figure)', () => {
    const plan = planCheckpointDownload(listing({ 'config.json': 1, 'tokenizer.json': 1, 'model.safetensors': undefined }), llava7b, 'q4');
    assert.equal(plan.totalBytes, undefined);
    assert.equal(conversionOffer(llava7b, 'q4', plan).downloadBytes, llava7b.checkpointBytes);
  });

  test('refused in words: no weights, missing shards, only .bin, no tokenizer', () => {
    const refuses = (l: RepoListing, re: RegExp) => assert.throws(() => planCheckpointDownload(l, llava7b, 'q4'), (e: unknown) => e instanceof DownloadError && re.test(e.message));
    refuses(listing({ 'config.json': 1, 'tokenizer.json': 1, 'pytorch_model.bin': 5 }), /no model\.safetensors.*pytorch_model\.bin is not read/);
    refuses(listing({ 'config.json': 1, 'tokenizer.json': 1, 'model.safetensors.index.json': 5 }), /no model-\*-of-\*\.safetensors/);
    refuses(listing({ 'config.json': 1, 'tokenizer.json': 1, 'model.safetensors.index.json': 5, 'model-00001-of-00003.safetensors': 1, 'model-00003-of-00003.safetensors': 1 }), /do not match their names \(2 of 3\)/);
    refuses(listing({ 'config.json': 1, 'model.safetensors': 5 }), /no tokenizer\.json/);
  });

  test('a size the catalog pins that the Hub contradicts is refused', () => {
    const pinned = { ...llava7b, files: [...llava7b.files.filter((f) => f.path !== 'config.json'), { path: 'config.json', size: 7 }] };
    assert.throws(() => planCheckpointDownload(listing({ 'config.json': 8, 'tokenizer.json': 1, 'model.safetensors': 9 }), pinned, 'q4'), /config\.json is 8 bytes on the Hub but the catalog pins 7/);
  });

  test('ONNX repositories still plan as before: a checkpoint listing has no ONNX variant to choose', () => {
    assert.throws(() => planDownload(sharded(), {}), /no variant of vision/);
  });
});

describe('dtype and sizes the user confirms', () => {
  test('q4 on a CPU, fp16 on a GPU', () => {
    assert.equal(conversionDtype(llava7b, 'cpu'), 'q4');
    assert.equal(conversionDtype(llava7b, 'gpu'), 'fp16');
    const cpuOnly = { ...llava7b, dtypes: { q4: llava7b.dtypes.q4! } };
    assert.equal(conversionDtype(cpuOnly, 'gpu'), llava7b.defaultDtype === 'q4' ? 'q4' : llava7b.defaultDtype);
  });

  test('the offer names download, disk after conversion, memory and licence from the catalog', () => {
    const q4 = conversionOffer(llava7b, 'q4', planCheckpointDownload(sharded(), llava7b, 'q4'));
    assert.equal(q4.diskBytes, llava7b.dtypes.q4!.diskBytes);
    assert.equal(q4.runBytes, llava7b.dtypes.q4!.runBytes);
    assert.equal(q4.downloadBytes, 10_071_000);
    assert.match(q4.question, /^Download and convert LLaVA-1\.5-7B\? 10 MB download, 4\.9 GB after conversion \(q4\)\.$/);
    assert.match(q4.detail, /Disk after conversion: 4\.9 GB in q4/);
    assert.match(q4.detail, /about 7\.0 GB of RAM/);
    assert.match(q4.detail, new RegExp(`Licence: ${llava7b.licence}`));
    assert.match(q4.detail, /Commit aaaaaaa/);
    const fp16 = conversionOffer(llava7b, 'fp16');
    assert.equal(fp16.downloadBytes, llava7b.checkpointBytes);
    assert.match(fp16.detail, /of GPU memory/);
    assert.equal(fp16.summary, '14.1 GB download · 14.1 GB fp16 · 15.7 GB GPU memory');
    assert.throws(() => conversionOffer({ ...llava7b, dtypes: { q4: llava7b.dtypes.q4! } }, 'fp16'), /no fp16 conversion/);
  });
});

describe('the child\'s progress and error lines', () => {
  const line: ConvertProgressLine = { type: 'progress', part: 'onnx/decoder_model_merged_q4.onnx', partIndex: 2, partCount: 3, state: 'tensor', bytesRead: 10, bytesTotal: 40, elapsedS: 5, etaS: 15 };

  test('round trip; no ETA is kept absent', () => {
    assert.deepEqual(parseProgressLine(formatProgressLine(line)), line);
    const { etaS: _, ...noEta } = line;
    assert.deepEqual(parseProgressLine(JSON.stringify(noEta)), noEta);
    assert.deepEqual(parseProgressLine('{"type":"done","out":"/x","written":3,"skipped":0,"seconds":1.5}'), { type: 'done', out: '/x', written: 3, skipped: 0, seconds: 1.5 });
  });

  test('anything else is not progress: log text, broken JSON, wrong types, unknown state', () => {
    for (const bad of ['', 'converted tiny: 3 parts', '{"type":"progress"', JSON.stringify({ ...line, bytesRead: '10' }), JSON.stringify({ ...line, state: 'half' }), JSON.stringify({ ...line, bytesTotal: -1 }), '{"type":"done","out":"/x"}', 'null', '[1]']) {
      assert.equal(parseProgressLine(bad), undefined, bad);
    }
  });

  test('lines split across chunks are put back together', () => {
    const s = new LineSplitter();
    const text = formatProgressLine(line) + 'hello\n' + formatProgressLine({ ...line, bytesRead: 20 });
    const got = [text.slice(0, 7), text.slice(7, 90), text.slice(90)].flatMap((c) => s.push(c)).concat(s.end());
    assert.deepEqual(got.map((l) => parseProgressLine(l)?.type ?? l), ['progress', 'hello', 'progress']);
  });

  test('ETA: mean rate of the work done here (skipped parts do not count), none before a second', () => {
    assert.equal(estimateEta(10, 40, 5), 15);
    assert.equal(estimateEta(30, 40, 5, 20), 5); // 10 bytes in 5 s, 10 left
    assert.equal(estimateEta(10, 40, 0.5), undefined);
    assert.equal(estimateEta(20, 40, 5, 20), undefined);
    assert.deepEqual([undefined, 42, 14 * 60, 2 * 3600 + 5 * 60].map(formatEta), ['estimating time left', '42 s left', '14 min left', '2 h 05 min left']);
  });

  test('the CLI\'s error line gives message and code; failures are worded per code', () => {
    assert.deepEqual(parseCliError('llava: config.json: missing [CONVERT]'), { message: 'config.json: missing', code: 'CONVERT' });
    assert.deepEqual(parseCliError('llava: something odd'), { message: 'something odd' });
    assert.equal(parseCliError('at Object.<anonymous>'), undefined);
    assert.match(describeConvertFailure(new DiskSpaceError('/m', 2e9, 1e9), 'LLaVA-1.5-7B'), /^Not enough free disk space to convert LLaVA-1\.5-7B: .*finished parts are kept/);
    assert.match(describeConvertFailure(new ConvertError('model.safetensors', 'no tensor x'), 'L'), /Could not convert L: model\.safetensors: no tensor x\. .*the log/);
    assert.match(describeConvertFailure(new AbortedError(), 'L'), /cancelled\. The finished parts are kept/);
  });
});
