// The committed held-out set (test/data/heldout/) is what `npx tsx training/data/heldout.ts` writes:
// every file matches its sha256 in MANIFEST.json, and a few items regenerated from their seeds give
// the committed image bytes and the committed problems, short answers, grounding and judged questions.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { describe, test } from 'node:test';
import sharp from 'sharp';
import { writeDataset } from '../../training/data/dataset';
import { GENERATE_DEFAULTS } from '../../training/data/generate';
import { COMMAND, HELDOUT, heldoutItem, writeHeldout } from '../../training/data/heldout';
import { formatProblem } from '../../training/data/llavaFormat';

const DIR = path.join(__dirname, '..', 'data', 'heldout');
const manifest = JSON.parse(readFileSync(path.join(DIR, 'MANIFEST.json'), 'utf8')) as { command: string; count: number; sharp: string; libvips: string; files: Record<string, string> };
const jsonl = (name: string) => readFileSync(path.join(DIR, name), 'utf8').trim().split('\n').map((l) => JSON.parse(l));

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => (statSync(path.join(dir, n)).isDirectory() ? walk(path.join(dir, n)).map((p) => `${n}/${p}`) : [n]));
}

describe('held-out set', () => {
  test('every file is the one the manifest lists (sha256), and nothing else is there', () => {
    assert.equal(manifest.command, COMMAND);
    assert.equal(manifest.count, HELDOUT.count);
    assert.equal(JSON.parse(readFileSync(path.join(DIR, 'pid_splits.json'), 'utf8')).test.length, HELDOUT.count + HELDOUT.diagrams);
    const present = walk(DIR).filter((f) => f !== 'MANIFEST.json' && f !== 'README.md').sort();
    assert.deepEqual(present, Object.keys(manifest.files).sort());
    for (const [rel, sha] of Object.entries(manifest.files)) assert.equal(createHash('sha256').update(readFileSync(path.join(DIR, rel))).digest('hex'), sha, rel);
    const bytes = present.reduce((n, f) => n + statSync(path.join(DIR, f)).size, 0);
    assert.ok(bytes < 8 * 1024 * 1024, `the set stays small (${bytes} bytes)`);
  });

  test('regenerated items are byte for byte the committed ones', async (t) => {
    if (sharp.versions.sharp !== manifest.sharp || sharp.versions.vips !== manifest.libvips) {
      // Not a skip: a different image library may encode different bytes, which this test must say.
      assert.fail(`the set was made with sharp ${manifest.sharp} / libvips ${manifest.libvips}, this is sharp ${sharp.versions.sharp} / libvips ${sharp.versions.vips}: regenerate it (${COMMAND}) and commit`);
    }
    const problems = JSON.parse(readFileSync(path.join(DIR, 'problems.json'), 'utf8'));
    const short = jsonl('short_answer.jsonl');
    const ground = jsonl('grounding.jsonl');
    const bench = jsonl('bench.jsonl');
    const contexts = jsonl('contexts.jsonl');
    for (const i of [0, 17, 42, HELDOUT.count - 1, HELDOUT.count, HELDOUT.count + HELDOUT.diagrams - 1]) {
      await t.test(`item ${i}`, async () => {
        const it = await heldoutItem(i);
        assert.ok(readFileSync(path.join(DIR, it.imagePath)).equals(it.bytes), `${it.imagePath}: same bytes`);
        assert.deepEqual(problems[it.pid], it.problem);
        assert.deepEqual(contexts[i], it.context);
        assert.deepEqual(short.filter((s) => s.question_id.startsWith(`${it.pid}-`)), it.shortAnswers);
        assert.deepEqual(ground.filter((s) => s.question_id.startsWith(`${it.pid}-`)), it.grounding);
        assert.deepEqual(bench.filter((s) => s.question_id.startsWith(`${it.pid}-`)), it.bench ? [it.bench] : []);
      });
    }
  });

  test('a set of another size (for telling runs apart) starts with the committed shape scenes and ends with its diagrams', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'llava-heldout-'));
    try {
      await writeHeldout(out, { count: 3, diagrams: 1 });
      const m = JSON.parse(readFileSync(path.join(out, 'MANIFEST.json'), 'utf8'));
      assert.equal(m.command, `${COMMAND} --count 3 --diagrams 1 --out DIR`);
      assert.deepEqual([m.count, m.diagrams], [3, 1]);
      const contexts = readFileSync(path.join(out, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      const committed = jsonl('contexts.jsonl');
      assert.deepEqual(contexts.slice(0, 3), committed.slice(0, 3));
      assert.ok(contexts[3].arrows && !committed[3].arrows, 'the last one is a diagram');
      assert.equal(JSON.parse(readFileSync(path.join(out, 'pid_splits.json'), 'utf8')).test.length, 4);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('--training: the scenes the recipe trains on (generate.ts with its defaults), asked the held-out way', async () => {
    const out = mkdtempSync(path.join(tmpdir(), 'llava-heldout-'));
    try {
      await writeDataset({ ...GENERATE_DEFAULTS, out: path.join(out, 'data'), count: 3 });
      await writeHeldout(path.join(out, 'set'), { count: 3, diagrams: 0, training: true });
      const m = JSON.parse(readFileSync(path.join(out, 'set', 'MANIFEST.json'), 'utf8'));
      assert.equal(m.command, `${COMMAND} --training --count 3 --out DIR`);
      assert.equal(m.split, 'train');
      const read = (f: string) => readFileSync(f, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; image: string });
      const trained = read(path.join(out, 'data', 'contexts.jsonl'));
      const asked = read(path.join(out, 'set', 'contexts.jsonl'));
      assert.deepEqual(asked.map((c) => c.id), ['train-000000', 'train-000001', 'train-000002']);
      for (let i = 0; i < 3; i++) {
        assert.deepEqual({ ...asked[i], image: '' }, { ...trained[i], image: '' }, `scene ${i}: the training scene`);
        const bytes = readFileSync(path.join(out, 'set', asked[i].image));
        assert.ok(bytes.equals(readFileSync(path.join(out, 'data', 'images', trained[i].image))), `scene ${i}: the training image's bytes`);
      }
      // scene 1 is a diagram where the generator drew one: its multiple-choice problem asks about an arrow
      const problems = Object.values(JSON.parse(readFileSync(path.join(out, 'set', 'problems.json'), 'utf8'))) as { category: string }[];
      assert.deepEqual(problems.map((p) => p.category === 'arrow'), [false, true, false]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test("problems are valid ScienceQA entries with the answer among the choices; questions use LLaVA-1.5's prompts", () => {
    const problems = JSON.parse(readFileSync(path.join(DIR, 'problems.json'), 'utf8')) as Record<string, { choices: string[]; answer: number; image: string; split: string; question: string }>;
    const splits = JSON.parse(readFileSync(path.join(DIR, 'pid_splits.json'), 'utf8'));
    assert.deepEqual(Object.keys(problems).sort(), [...splits.test].sort());
    for (const [pid, p] of Object.entries(problems)) {
      assert.ok(p.choices.length >= 2 && p.answer >= 0 && p.answer < p.choices.length, pid);
      assert.equal(new Set(p.choices).size, p.choices.length, `${pid}: distinct choices`);
      assert.equal(p.split, 'test');
      assert.ok(statSync(path.join(DIR, 'images', 'test', pid, p.image)).isFile());
    }
    for (const s of jsonl('short_answer.jsonl')) assert.ok(s.text.endsWith('\nAnswer the question using a single word or phrase.'), s.question_id);
    for (const g of jsonl('grounding.jsonl')) assert.equal(g.text, `Please provide the bounding box coordinate of the region this sentence describes: ${g.phrase}`);
    // the held-out questions as one LLaVA-Instruct sample each also pass the format check
    for (const s of jsonl('short_answer.jsonl')) assert.equal(formatProblem({ id: s.question_id, image: s.image, conversations: [{ from: 'human', value: `<image>\n${s.text}` }, { from: 'gpt', value: s.answer }] }), '');
  });
});
