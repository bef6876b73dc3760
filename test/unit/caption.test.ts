// The caption job runner (src/captioning/jobs.ts) with the tiny model over ~50 generated images, broken
// ones included: outputs as configured, placeholders, prefix, skip/overwrite/append, torn-manifest repair,
// and a CLI run killed with SIGKILL then rerun (every caption complete, none duplicated).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spawn } from 'node:child_process';
import { appendFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import sharp from 'sharp';
import { loadModel, type LlavaModel } from '../../src/engine/index';
import { checkSidecarExt, expandImagePaths, fillPrompt, finalCaption, PRESET_PROMPTS, runCaptionJob, type CaptionJobOptions } from '../../src/captioning/jobs';
import { modelCaptionBackend } from '../../src/captioning/modelBackend';
import { csvLine, Manifest, parseCsv, readCsvCell, sidecarPath } from '../../src/captioning/outputs';
import { ensureFixtures } from '../fixtures/index';

const ROOT = path.join(__dirname, '..', '..');
const TOKENS = 4;
const BROKEN = ['a/truncated.png', 'b/text.jpg', 'b/zero.png'];

let model: LlavaModel;
let modelDir: string;
let work: string;
let source: string; // the pristine image folder; each test captions a copy
let goodImages: string[]; // relative paths

async function makeImages(dir: string): Promise<string[]> {
  const good: string[] = [];
  for (let i = 0; i < 47; i++) {
    const sub = i % 2 ? 'b' : 'a';
    const fmt = ['png', 'jpg', 'webp'][i % 3] as 'png' | 'jpg' | 'webp';
    const rel = `${sub}/img${String(i).padStart(2, '0')}.${fmt}`;
    const w = 16 + ((i * 7) % 48);
    const h = 16 + ((i * 11) % 40);
    const pixels = Buffer.alloc(w * h * 3);
    for (let p = 0; p < pixels.length; p++) pixels[p] = (p * (i + 3) + i * 31) & 255; // a different pattern per image
    await sharp(pixels, { raw: { width: w, height: h, channels: 3 } }).toFormat(fmt === 'jpg' ? 'jpeg' : fmt).toFile(path.join(dir, rel));
    good.push(rel);
  }
  const png = readFileSync(path.join(dir, 'a/img00.png'));
  writeFileSync(path.join(dir, 'a/truncated.png'), png.subarray(0, Math.floor(png.length / 2)));
  writeFileSync(path.join(dir, 'b/text.jpg'), 'this is a text file, not a JPEG\n');
  writeFileSync(path.join(dir, 'b/zero.png'), '');
  writeFileSync(path.join(dir, 'a/notes.md'), '# not an image');
  mkdirSync(path.join(dir, '.hidden'));
  await sharp({ create: { width: 8, height: 8, channels: 3, background: '#fff' } }).png().toFile(path.join(dir, '.hidden/skip.png'));
  return good.sort();
}

function copyOfImages(name: string): string {
  const dir = path.join(work, name);
  cpSync(source, dir, { recursive: true });
  return dir;
}

function jsonl(file: string): Record<string, any>[] {
  const text = readFileSync(file, 'utf8');
  assert.ok(text === '' || text.endsWith('\n'), 'the manifest ends with a complete line');
  return text.split('\n').filter(Boolean).map((l) => JSON.parse(l));
}

async function run(dir: string, opts: Partial<CaptionJobOptions> = {}) {
  const images = await expandImagePaths([dir]);
  return runCaptionJob(modelCaptionBackend(model), { images, batchSize: 4, maxNewTokens: TOKENS, ...opts });
}

before(async () => {
  [modelDir] = await ensureFixtures(['tiny-llava']);
  model = await loadModel(modelDir, { provider: 'cpu', variant: 'fp32', threads: 1 });
  work = mkdtempSync(path.join(os.tmpdir(), 'llava-caption-'));
  source = path.join(work, 'source');
  mkdirSync(path.join(source, 'a'), { recursive: true });
  mkdirSync(path.join(source, 'b'));
  goodImages = await makeImages(source);
});
after(async () => {
  await model?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('caption helpers', () => {
  test('folders expand recursively to image files only, hidden folders skipped', async () => {
    const found = (await expandImagePaths([source])).map((p) => path.relative(source, p).split(path.sep).join('/'));
    assert.deepEqual(found, [...goodImages, ...BROKEN].sort());
  });

  test('placeholders', () => {
    const p = fillPrompt('{name} in {folder}: {existing} {unknown}', { imagePath: '/x/cats/tabby.png', existing: ' old tags \n' });
    assert.equal(p, 'tabby in cats: old tags {unknown}');
    assert.equal(fillPrompt('{existing}|', { imagePath: 'a.png' }), '|');
  });

  test('final caption keeps the prefix verbatim and appends after an old caption', () => {
    assert.equal(finalCaption('A photo of a cat \n', 'A photo of', undefined, ' '), 'A photo of a cat');
    assert.equal(finalCaption('Tags: cat', 'Tags:', 'old', ', '), 'old, Tags: cat');
    assert.equal(finalCaption(' red, blue ', undefined, 'green', ', '), 'green, red, blue');
  });

  test('CSV quoting follows RFC 4180 and parses back', () => {
    // RFC 4180 section 2: fields with commas, quotes or line breaks are quoted; quotes are doubled.
    const fields = ['plain', 'a, b', 'say "hi"', 'two\nlines', ''];
    const line = csvLine(fields);
    assert.equal(line, 'plain,"a, b","say ""hi""","two\nlines",\r\n');
    const { records, completeChars } = parseCsv(line + 'torn,"unfinished');
    assert.deepEqual(records, [fields]);
    assert.equal(completeChars, line.length);
  });

  test('CSV: cells a spreadsheet would run as formulas are neutralised, and read back exactly', async () => {
    const hostile = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\t=1', "'=already", 'fine', 'a=b'];
    const line = csvLine(hostile);
    const { records } = parseCsv(line);
    for (const cell of records[0].slice(0, 6)) assert.ok(cell.startsWith("'"), `neutralised: ${cell}`);
    assert.deepEqual(records[0].slice(6), ['fine', 'a=b'], 'other cells untouched');
    assert.deepEqual(records[0].map(readCsvCell), hostile, 'round trip');
    // through a real manifest: the caption and a path starting with '-' come back as written (resume works)
    const dir = mkdtempSync(path.join(os.tmpdir(), 'llava-csv-'));
    const file = path.join(dir, 'c.csv');
    const m = await Manifest.open(file, 'csv');
    await m.append({ path: '-dash.png', caption: '=cmd|calc', model: 'm', variant: 'v', prompt: '@p', seconds: 1, error: '' });
    await m.close();
    assert.match(readFileSync(file, 'utf8'), /'=cmd\|calc/);
    const again = await Manifest.open(file, 'csv');
    assert.equal(again.successes().get('-dash.png')?.caption, '=cmd|calc');
    await again.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('--ext: a name next to the image only, never an image extension or a path', () => {
    for (const ok of ['.txt', '.caption', '.md']) checkSidecarExt(ok);
    for (const bad of ['.png', '.JPG', '.webp', 'txt', '../x.txt', '.a/b', '.a\\b', '..', '.', '', '.t\nx']) {
      assert.throws(() => checkSidecarExt(bad), Error, JSON.stringify(bad));
    }
  });
});

describe('caption jobs with the tiny model', () => {
  test('sidecars next to each image, failures recorded, report manifest', async () => {
    const dir = copyOfImages('sidecar');
    const manifest = path.join(dir, 'report.jsonl');
    const summary = await run(dir, { prefix: 'A photo of', manifest });
    assert.equal(summary.total, 50);
    assert.equal(summary.captioned, 47);
    assert.deepEqual(summary.failed.map((f) => path.relative(dir, f.path).split(path.sep).join('/')).sort(), [...BROKEN].sort());
    assert.ok(summary.failed.every((f) => f.code === 'IMAGE_DECODE' && f.error.length > 0), JSON.stringify(summary.failed));
    for (const rel of goodImages) {
      const text = readFileSync(sidecarPath(path.join(dir, rel)), 'utf8');
      assert.ok(text.startsWith('A photo of') && text.length > 'A photo of'.length, `${rel}: "${text}"`);
    }
    for (const rel of BROKEN) assert.ok(!existsSync(sidecarPath(path.join(dir, rel))), `no sidecar for ${rel}`);
    const records = jsonl(manifest);
    assert.equal(records.length, 50);
    for (const r of records) {
      const rel = r.path as string;
      assert.equal(r.error === '', goodImages.includes(rel), `${rel} error "${r.error}"`);
      if (!r.error) assert.equal(r.caption, readFileSync(sidecarPath(path.join(dir, rel)), 'utf8'));
      assert.equal(r.model, 'tiny-llava');
      assert.equal(r.prompt, PRESET_PROMPTS.short);
    }
    // a caption is the model's answer for that image: compare two with the one-by-one path
    for (const rel of goodImages.slice(0, 2)) {
      let text = '';
      const turns = [{ role: 'user' as const, text: PRESET_PROMPTS.short, images: [{ path: path.join(dir, rel) }] }];
      for await (const ev of model.generate(turns, { maxNewTokens: TOKENS, answerPrefix: 'A photo of' })) if (ev.type === 'done') text = ev.text;
      const ours = readFileSync(sidecarPath(path.join(dir, rel)), 'utf8');
      // generate() decodes its tokens without the prefix's context; compare the token-derived part loosely
      assert.equal(ours.replace(/\s+/g, ''), text.trim().replace(/\s+/g, ''), rel);
    }
    assert.deepEqual(readdirSync(path.join(dir, 'a')).filter((n) => n.includes('llava-tmp')), [], 'no temp files left');
  });

  test('skip, overwrite and append on sidecars; {existing} and {name} in a custom prompt', async () => {
    const dir = copyOfImages('existing');
    rmSync(path.join(dir, 'b'), { recursive: true });
    for (const f of readdirSync(path.join(dir, 'a'))) if (!/^img0[0-4]/.test(f)) rmSync(path.join(dir, 'a', f));
    const images = (await expandImagePaths([dir])).sort();
    assert.equal(images.length, 3); // img00.png, img02.webp, img04.jpg
    const target = sidecarPath(images[0]);
    writeFileSync(target, 'hand-written caption');

    const manifest = path.join(work, 'existing.jsonl');
    const first = await run(dir, { preset: 'custom', prompt: 'Caption {name} from {folder}. Old: {existing}', manifest });
    assert.equal(first.skipped, 1);
    assert.equal(first.captioned, 2);
    assert.equal(readFileSync(target, 'utf8'), 'hand-written caption', 'skip leaves an existing sidecar alone');
    const prompts = jsonl(manifest).map((r) => r.prompt).sort();
    assert.deepEqual(prompts, ['Caption img02 from a. Old: ', 'Caption img04 from a. Old: ']);

    const second = await run(dir, { manifest });
    assert.equal(second.skipped, 3, 'a rerun does nothing');
    assert.equal(second.captioned, 0);

    const over = await run(dir, { existing: 'overwrite', preset: 'custom', prompt: 'Improve: {existing}', manifest });
    assert.equal(over.captioned, 3);
    const overwritten = readFileSync(target, 'utf8');
    assert.notEqual(overwritten, 'hand-written caption');
    const overRecord = jsonl(manifest).find((r) => r.path === path.relative(work, images[0]).split(path.sep).join('/'));
    assert.equal(overRecord?.prompt, 'Improve: hand-written caption', '{existing} is the sidecar caption');
    assert.equal(overRecord?.caption, overwritten);

    const others = images.slice(1).map((p) => readFileSync(sidecarPath(p), 'utf8'));
    await run(dir, { existing: 'append', preset: 'tags' });
    const appended = readFileSync(target, 'utf8');
    assert.ok(appended.startsWith(overwritten + ', ') && appended.length > overwritten.length + 2, appended);
    images.slice(1).forEach((p, i) => assert.ok(readFileSync(sidecarPath(p), 'utf8').startsWith(others[i] + ', ')));
    // the report manifest was compacted: one record per image
    const paths = jsonl(manifest).map((r) => r.path);
    assert.equal(new Set(paths).size, paths.length);
  });

  test('JSONL and CSV manifests: one success per image, reruns resume, torn records repaired', async () => {
    for (const format of ['jsonl', 'csv'] as const) {
      const dir = copyOfImages(`manifest-${format}`);
      const manifest = path.join(dir, `captions.${format}`);
      const read = () => {
        const text = readFileSync(manifest, 'utf8');
        if (format === 'jsonl') return jsonl(manifest);
        const { records, completeChars } = parseCsv(text);
        assert.equal(completeChars, text.length, 'no torn CSV record');
        const [header, ...rows] = records;
        assert.deepEqual(header, ['path', 'caption', 'model', 'variant', 'prompt', 'seconds', 'error']);
        return rows.map((r) => Object.fromEntries(header.map((h, i) => [h, r[i]])));
      };
      const first = await run(dir, { output: format, manifest, maxNewTokens: 3 });
      assert.equal(first.captioned, 47);
      assert.ok(goodImages.every((rel) => !existsSync(sidecarPath(path.join(dir, rel)))), 'no sidecars in manifest mode');
      const records = read();
      assert.equal(records.length, 50);
      if (format === 'csv') assert.ok(readFileSync(manifest, 'utf8').includes(`"${PRESET_PROMPTS.short}"`), 'a prompt with a comma is quoted');

      // Simulate a kill: drop the last success and leave half a record at the end.
      const text = readFileSync(manifest, 'utf8');
      const lastGood = records.filter((r) => !r.error).at(-1)!;
      const kept = format === 'jsonl'
        ? text.split('\n').filter((l) => l && JSON.parse(l).path !== lastGood.path).join('\n') + '\n'
        : parseCsv(text).records.filter((r) => r[0] !== lastGood.path).map(csvLine).join('');
      writeFileSync(manifest, kept);
      appendFileSync(manifest, format === 'jsonl' ? '{"path":"a/img00.png","capt' : 'a/img00.png,"half a capt');
      const rerun = await run(dir, { output: format, manifest, maxNewTokens: 3 });
      assert.ok(rerun.repairedBytes > 0, 'the torn record was cut');
      assert.equal(rerun.captioned, 1, 'only the missing image is redone');
      assert.equal(rerun.failed.length, 3, 'failed images are retried');
      const after = read();
      const success = after.filter((r) => !r.error).map((r) => r.path);
      assert.deepEqual([...success].sort(), goodImages, 'exactly one success per image');
      assert.equal(after.length, 50, 'failures are not duplicated either (compaction)');
    }
  });

  test('seeded sampling is reproducible', async () => {
    const dir = copyOfImages('seeded');
    const images = (await expandImagePaths([path.join(dir, 'a')])).slice(0, 3);
    const captions: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const manifest = path.join(dir, `s${i}.jsonl`);
      await runCaptionJob(modelCaptionBackend(model), { images, output: 'jsonl', manifest, batchSize: 3, maxNewTokens: 6, temperature: 1, seed: 7 });
      captions.push(jsonl(manifest).map((r) => r.caption));
    }
    assert.deepEqual(captions[0], captions[1]);
    const greedy = path.join(dir, 'g.jsonl');
    await runCaptionJob(modelCaptionBackend(model), { images, output: 'jsonl', manifest: greedy, batchSize: 3, maxNewTokens: 6 });
    assert.notDeepEqual(jsonl(greedy).map((r) => r.caption), captions[0], 'temperature 1 should sample something else than greedy');
  });

  test('an AbortSignal stops the job promptly; the rerun finishes it', async () => {
    const dir = copyOfImages('abort');
    const manifest = path.join(dir, 'm.jsonl');
    const controller = new AbortController();
    const summary = await run(dir, {
      manifest, batchSize: 2, signal: controller.signal,
      onImage: () => { if (!controller.signal.aborted) controller.abort(); },
    });
    assert.ok(summary.cancelled);
    assert.ok(summary.captioned + summary.failed.length <= 3, `stopped after ${summary.captioned + summary.failed.length} images`);
    const rest = await run(dir, { manifest });
    assert.equal(summary.captioned + rest.captioned, 47);
    assert.equal(new Set(jsonl(manifest).map((r) => r.path)).size, jsonl(manifest).length);
  });
});

describe('a CLI run killed with SIGKILL', () => {
  test('resumes: every caption complete, none duplicated', { timeout: 120_000 }, async () => {
    const dir = copyOfImages('killed');
    const manifest = path.join(dir, 'run.jsonl');
    const args = ['--import', 'tsx', path.join(ROOT, 'src/cli/index.ts'), 'caption', dir, '--model', modelDir, '--provider', 'cpu', '--threads', '1',
      '--batch', '2', '--max-new-tokens', '24', '--manifest', manifest, '--prefix', 'Photo:'];
    const sidecars = () => goodImages.filter((rel) => existsSync(sidecarPath(path.join(dir, rel)))).length;

    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    let killedAt = -1;
    for (let i = 0; i < 6000 && child.exitCode === null; i++) {
      if (sidecars() >= 3) {
        child.kill('SIGKILL');
        killedAt = sidecars();
        break;
      }
      await new Promise((r) => setTimeout(r, 10));
    }
    await exited;
    assert.ok(killedAt >= 0, `the run ended before it could be killed: ${stderr.slice(-500)}`);
    assert.ok(killedAt < goodImages.length, 'killed mid-way');

    const rerun = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    rerun.stdout.on('data', (d) => (out += d));
    const code = await new Promise<number | null>((resolve) => rerun.on('exit', resolve));
    assert.equal(code, 1, 'exit code 1: some images failed (the broken ones)');
    const summary = JSON.parse(out.trim().split('\n').at(-1)!);
    assert.equal(summary.event, 'summary');
    assert.ok(summary.skipped >= killedAt, 'images captioned before the kill are skipped');

    const records = jsonl(manifest);
    const successes = records.filter((r) => !r.error).map((r) => r.path).sort();
    assert.deepEqual(successes, goodImages, 'exactly one successful record per image');
    assert.equal(records.length, 50, 'one record per image');
    for (const r of records.filter((x) => !x.error)) {
      const text = readFileSync(sidecarPath(path.join(dir, r.path)), 'utf8');
      assert.equal(text, r.caption, `${r.path}: the sidecar is complete`);
      assert.ok(text.startsWith('Photo:'));
    }
    for (const sub of ['a', 'b']) assert.deepEqual(readdirSync(path.join(dir, sub)).filter((n) => n.includes('llava-tmp')), [], 'temp files cleaned');
  });
});
