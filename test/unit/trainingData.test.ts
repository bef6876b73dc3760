// The training-data generator (training/data/): scenes are deterministic and inside the domain the
// issue fixes, the boxes are where the pixels are, every sample follows the LLaVA-Instruct format,
// the facts the questions state are true of the boxes, and grounding answers round-trip to the true
// boxes through the padded-square frame that the engine's own preprocessing defines.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import sharp from 'sharp';
import { loadModel } from '../../src/engine/index';
import { sceneContext, type Context } from '../../training/data/context';
import { LEAD_PROMPTS, templateSamples, writeDataset } from '../../training/data/dataset';
import { PRESET_PROMPTS } from '../../src/captioning/jobs';
import { imageFacts } from '../../training/data/facts';
import { answerToPixelBox, boxAnswer, paddedSquareGeometry } from '../../training/data/frame';
import { formatProblem, type InstructSample } from '../../training/data/llavaFormat';
import { renderScene } from '../../training/data/render';
import { Rng } from '../../training/data/rng';
import { COLOURS, makeScene, SHAPES, SIZES, type Scene, type ShapeClass } from '../../training/data/scene';
import { isRelated, referringPhrase, type Relation } from '../../training/data/spatial';
import { main as generateMain } from '../../training/data/generate';
import { LETTERS, MULTIPLE_CHOICE_PROMPT, shortAnswerQuestion } from '../../training/data/formats15';
import { topicOf } from '../../training/pack';
import { rewordSample, wordingsOf } from '../../training/data/wordings';
import { ensureFixtures } from '../fixtures/index';

const scenes: Scene[] = Array.from({ length: 150 }, (_, i) => makeScene(`t-${i}`, `test:${i}`));

describe('scenes', () => {
  test('the same key gives the same scene and the same image bytes; another key another scene', async () => {
    for (const i of [0, 7, 31]) {
      const a = makeScene('x', `k:${i}`);
      const b = makeScene('x', `k:${i}`);
      assert.deepEqual(a, b);
      assert.ok((await renderScene(a)).equals(await renderScene(b)), `scene ${i} renders to the same bytes`);
    }
    assert.notDeepEqual(makeScene('x', 'k:1').objects, makeScene('x', 'k:2').objects);
  });

  test('stay in the domain: 1-6 non-overlapping shapes inside the image, 200-1200 px, aspect 1:2 to 2:1, both formats', () => {
    const counts = new Set<number>();
    const formats = new Set<string>();
    for (const s of scenes) {
      assert.ok(Math.max(s.width, s.height) >= 200 && Math.max(s.width, s.height) <= 1200, `${s.id}: ${s.width}x${s.height}`);
      assert.ok(s.width / s.height >= 0.5 - 1e-9 && s.width / s.height <= 2 + 1e-9, `${s.id}: aspect ${s.width / s.height}`);
      assert.ok(s.objects.length >= 1 && s.objects.length <= 6);
      counts.add(s.objects.length);
      formats.add(s.format);
      for (const [i, o] of s.objects.entries()) {
        assert.ok(SHAPES.includes(o.shape as ShapeClass) && COLOURS.includes(o.colour) && SIZES.includes(o.size));
        const [x1, y1, x2, y2] = o.box;
        assert.ok(x1 >= 0 && y1 >= 0 && x2 <= s.width && y2 <= s.height && x1 < x2 && y1 < y2, `${s.id}: box ${o.box} inside ${s.width}x${s.height}`);
        for (const p of s.objects.slice(i + 1)) {
          const apart = p.box[0] >= x2 || x1 >= p.box[2] || p.box[1] >= y2 || y1 >= p.box[3];
          assert.ok(apart, `${s.id}: boxes ${o.box} and ${p.box} overlap`);
        }
      }
    }
    assert.deepEqual([...counts].sort(), [1, 2, 3, 4, 5, 6]);
    assert.deepEqual([...formats].sort(), ['jpeg', 'png']);
  });

  test("an object's box is where its pixels differ from the background (within 1 px)", async () => {
    for (const shape of SHAPES) {
      const scene = scenes.find((s) => s.background.noise === 0 && s.format === 'png' && s.objects.length === 1 && s.objects[0].shape === shape) ?? singleObjectScene(shape);
      const { data, info } = await sharp(await renderScene(scene)).raw().toBuffer({ resolveWithObject: true });
      const bg = scene.background.rgb;
      let [x1, y1, x2, y2] = [Infinity, Infinity, -Infinity, -Infinity];
      for (let y = 0; y < info.height; y++) {
        for (let x = 0; x < info.width; x++) {
          const p = (y * info.width + x) * info.channels;
          // a pixel at least a quarter covered by the shape (anti-aliased edges are partial)
          const diff = Math.max(...[0, 1, 2].map((c) => Math.abs(data[p + c] - bg[c])));
          const full = Math.max(...[0, 1, 2].map((c) => Math.abs(scene.objects[0].fill[c] - bg[c])));
          if (diff < full / 4) continue;
          [x1, y1, x2, y2] = [Math.min(x1, x), Math.min(y1, y), Math.max(x2, x + 1), Math.max(y2, y + 1)];
        }
      }
      const box = scene.objects[0].box;
      for (let k = 0; k < 4; k++) assert.ok(Math.abs([x1, y1, x2, y2][k] - box[k]) <= 1, `${shape}: pixels span ${[x1, y1, x2, y2]}, box says ${box}`);
    }
  });
});

/** A plain PNG scene with exactly one object of `shape` (searched over seeds, deterministically). */
function singleObjectScene(shape: string): Scene {
  for (let i = 0; i < 5000; i++) {
    const s = makeScene(`one-${i}`, `one:${i}`, { objectCount: 1 });
    if (s.background.noise === 0 && s.format === 'png' && s.objects[0].shape === shape) return s;
  }
  throw new Error(`no plain single-${shape} scene found`);
}

describe('diagrams (boxes joined by arrows)', () => {
  const diagrams = Array.from({ length: 60 }, (_, i) => makeScene(`d-${i}`, `dtest:${i}`, { diagramRate: 1 }));

  test('2-5 boxes of distinct colours apart from each other; n - 1 arrows that cross no box', () => {
    for (const d of diagrams) {
      assert.equal(d.kind, 'diagram');
      const n = d.objects.length;
      assert.ok(n >= 2 && n <= 5, `${d.id}: ${n} boxes`);
      assert.equal(new Set(d.objects.map((o) => o.colour)).size, n, `${d.id}: distinct colours`);
      assert.equal(d.arrows.length, n - 1, `${d.id}: a tree of arrows`);
      for (const [i, o] of d.objects.entries()) {
        assert.equal(o.shape, 'box');
        assert.ok(o.box[0] >= 0 && o.box[1] >= 0 && o.box[2] <= d.width && o.box[3] <= d.height, `${d.id}: inside`);
        for (const p of d.objects.slice(i + 1)) assert.ok(p.box[0] >= o.box[2] || o.box[0] >= p.box[2] || p.box[1] >= o.box[3] || o.box[1] >= p.box[3], `${d.id}: boxes apart`);
      }
      for (const a of d.arrows) {
        assert.ok(a.from !== a.to && a.from < n && a.to < n);
        const len = Math.hypot(a.end[0] - a.start[0], a.end[1] - a.start[1]);
        assert.ok(len >= 8, `${d.id}: arrow of ${len.toFixed(1)} px`);
        for (let t = 0; t <= 1; t += 0.02) {
          const [x, y] = [a.start[0] + t * (a.end[0] - a.start[0]), a.start[1] + t * (a.end[1] - a.start[1])];
          for (const o of d.objects) assert.ok(!(x > o.box[0] && x < o.box[2] && y > o.box[1] && y < o.box[3]), `${d.id}: arrow ${a.from}->${a.to} crosses a box`);
        }
      }
    }
  });

  test('arrows are drawn where the scene says (dark pixels at their middle), and shape scenes do not change when diagrams are on', async () => {
    for (const d of diagrams.filter((x) => x.format === 'png').slice(0, 5)) {
      const { data, info } = await sharp(await renderScene(d)).raw().toBuffer({ resolveWithObject: true });
      for (const a of d.arrows) {
        const [x, y] = [Math.round((a.start[0] + a.end[0]) / 2), Math.round((a.start[1] + a.end[1]) / 2)];
        const p = (y * info.width + x) * info.channels;
        assert.ok(data[p] < 110 && data[p + 1] < 110 && data[p + 2] < 110, `${d.id}: arrow pixel at ${x},${y} is ${[data[p], data[p + 1], data[p + 2]]}`);
      }
    }
    for (let i = 0; i < 40; i++) {
      const mixed = makeScene(`m-${i}`, `mix:${i}`, { diagramRate: 0.3 });
      if (mixed.kind === 'shapes') assert.deepEqual(mixed, makeScene(`m-${i}`, `mix:${i}`));
    }
  });

  test('arrow facts follow the arrows; every diagram sample follows the format', () => {
    for (const d of diagrams) {
      const ctx = sceneContext(d, 'd.png');
      assert.deepEqual(ctx.arrows, d.arrows.map((a) => ({ from: a.from, to: a.to })));
      const colourOf = (c: string) => d.objects.findIndex((o) => o.colour === c);
      for (const f of imageFacts(ctx, new Rng(d.id))) {
        const target = /^Which box does the arrow from the (\w+) box point to\?$/.exec(f.question);
        if (target) assert.ok(d.arrows.some((a) => a.from === colourOf(target[1]) && a.to === colourOf(f.short)), `${d.id}: ${f.question} ${f.short}`);
        const link = /^Is there an arrow from the (\w+) box to the (\w+) box\?$/.exec(f.question);
        if (link) assert.equal(f.short, d.arrows.some((a) => a.from === colourOf(link[1]) && a.to === colourOf(link[2])) ? 'yes' : 'no');
        if (f.kind === 'arrow-count') assert.equal(f.short, String(d.arrows.length));
      }
      const t = templateSamples(ctx);
      for (const s of [t.caption, t.conversation, t.detail, t.complex, ...t.formats15]) assert.equal(formatProblem(s), '', s.id);
    }
  });
});

describe('instruction data', () => {
  let dir: string;
  let mix: InstructSample[];
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'llava-train-'));
    await writeDataset({ out: dir, count: 40, seed: 3, split: 'train' });
    mix = JSON.parse(readFileSync(path.join(dir, 'llava_v1_5_mix.json'), 'utf8'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('every file parses, every sample follows the format, every image exists', () => {
    const images = new Set(readdirSync(path.join(dir, 'images')));
    assert.equal(images.size, 40);
    for (const name of ['captions', 'captions_lead', 'conversation', 'detail', 'complex_reasoning', 'llava_v1_5_mix', 'vqa', 'mcq']) {
      const list = JSON.parse(readFileSync(path.join(dir, `${name}.json`), 'utf8')) as InstructSample[];
      assert.ok(list.length >= 40, `${name}: ${list.length} samples`);
      for (const s of list) {
        assert.equal(formatProblem(s), '', `${name}: ${s.id}`);
        assert.ok(images.has(s.image), `${name}: ${s.image} exists`);
        assert.equal(s.conversations.map((t) => t.value).join('').split('<image>').length - 1, 1);
      }
    }
    const ids = mix.map((s) => s.id);
    assert.equal(new Set(ids).size, ids.length, 'ids are unique');
    for (const suffix of ['conv', 'detail', 'complex', 'short', 'mc', 'ground', 'region']) assert.ok(ids.some((id) => id.endsWith(`-${suffix}`)), `the mix has ${suffix} samples`);
  });

  test('vqa.json: many short-answer questions per image, none of them in the mix', () => {
    const vqa = JSON.parse(readFileSync(path.join(dir, 'vqa.json'), 'utf8')) as InstructSample[];
    assert.equal(vqa.length, 40, 'one sample per image');
    assert.ok(vqa.every((s) => s.id.endsWith('-vqa')) && !mix.some((s) => s.id.endsWith('-vqa')));
    const turns = vqa.map((s) => s.conversations.length / 2);
    assert.ok(Math.max(...turns) === 12 && turns.every((n) => n >= 1), `turns per image: ${turns.join(' ')}`);
    for (const s of vqa) assert.ok(s.conversations.filter((t) => t.from === 'human').every((t) => t.value.endsWith('\nAnswer the question using a single word or phrase.')));
  });

  test('--answers lower writes the short answers in the options\' case and changes nothing else', () => {
    for (const s of scenes.slice(0, 40)) {
      const ctx = sceneContext(s, 'x.png');
      const capital = templateSamples(ctx);
      const lower = templateSamples(ctx, 'lower');
      const short = (t: typeof capital) => [t.vqa, t.formats15.find((x) => x.id.endsWith('-short'))!];
      const lowered = short(lower);
      for (const [k, c] of short(capital).entries()) {
        const l = lowered[k];
        for (let i = 1; i < c.conversations.length; i += 2) {
          assert.equal(l.conversations[i].value, c.conversations[i].value.toLowerCase(), c.id);
          if (/^[a-z]/i.test(c.conversations[i].value)) assert.match(c.conversations[i].value, /^[A-Z]/, `${c.id}: capital by default`);
        }
        assert.deepEqual({ ...l, conversations: l.conversations.filter((_, i) => i % 2 === 0) }, { ...c, conversations: c.conversations.filter((_, i) => i % 2 === 0) });
      }
      const rest = (t: typeof capital) => [t.caption, t.lead, t.conversation, t.detail, t.complex, t.mcq, ...t.formats15.filter((x) => !x.id.endsWith('-short'))];
      assert.deepEqual(rest(lower), rest(capital));
    }
  });

  test('single-turn questions say which objects they are about, and those are the objects that decide the answer', () => {
    const contexts = new Map(readFileSync(path.join(dir, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Context).map((c) => [c.image, c]));
    const vqa = JSON.parse(readFileSync(path.join(dir, 'vqa.json'), 'utf8')) as InstructSample[];
    const seen = new Set<string>();
    for (const s of [...vqa, ...mix.filter((x) => /-(short|mc|ground|region)$/.test(x.id))]) {
      const objects = contexts.get(s.image)!.objects;
      assert.equal(s.about?.length, s.conversations.length / 2, `${s.id}: one list per question`);
      s.about!.forEach((about, k) => {
        const q = s.conversations[2 * k].value.replace(/^<image>\n/, '');
        const a = s.conversations[2 * k + 1].value.toLowerCase();
        const named = about.map((i) => objects[i]);
        assert.ok(about.every((i) => Number.isInteger(i) && i >= 0 && i < objects.length), `${s.id}: ${about}`);
        if (s.id.endsWith('-ground')) {
          seen.add('ground');
          assert.equal(about.length, 1);
          assert.equal(a, boxAnswer(named[0].box, contexts.get(s.image)!.width, contexts.get(s.image)!.height), `${s.id}: the box of the object it is about`);
          return;
        }
        if (s.id.endsWith('-region') || s.id.endsWith('-mc')) return;
        const topic = topicOf(q);
        seen.add(topic);
        if (topic === 'colour') assert.ok(about.length === 1 && named[0].colour === a, `${s.id}: ${q} -> ${a}`);
        if (topic === 'shape') assert.ok(about.length === 1 && named[0].class === a, `${s.id}: ${q} -> ${a}`);
        if (topic === 'count') assert.equal(about.length, Number(a), `${s.id}: ${q} -> ${a}`);
        if (topic === 'existence') {
          const [, colour, cls] = /^Is there an? (\w+) (\w+) in the image\?/.exec(q)!;
          assert.equal(about.length > 0, a === 'yes', `${s.id}: ${q} -> ${a}`);
          assert.ok(named.every((o) => o.colour === colour && o.class === cls));
        }
        if (topic === 'position') assert.ok(about.length === 1 || about.length === 2, `${s.id}: ${q}`);
      });
    }
    assert.deepEqual([...seen].sort(), ['colour', 'count', 'existence', 'ground', 'position', 'shape']);
  });

  test('mcq.json: many multiple-choice questions per image, each answer the letter of the true option', () => {
    const mcq = JSON.parse(readFileSync(path.join(dir, 'mcq.json'), 'utf8')) as InstructSample[];
    assert.equal(mcq.length, 40, 'one sample per image');
    assert.ok(mcq.every((s) => s.id.endsWith('-mcq')) && !mix.some((s) => s.id.endsWith('-mcq')));
    const turns = mcq.map((s) => s.conversations.length / 2);
    assert.ok(Math.max(...turns) === 8 && turns.every((n) => n >= 1), `turns per image: ${turns.join(' ')}`);
    assert.ok(turns.reduce((a, b) => a + b, 0) >= 40 * 4, 'several per image on average');
    const contexts = new Map(readFileSync(path.join(dir, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Context).map((c) => [c.image, c]));
    const letters = new Map<string, number>();
    for (const s of mcq) {
      const ctx = contexts.get(s.image)!;
      // the facts in the order the sample asks them (its own stream), each checked against the boxes elsewhere
      const facts = imageFacts(ctx, new Rng(`${ctx.id}:mcq`)).filter((f) => f.distractors.length > 0);
      for (let i = 0; i < s.conversations.length; i += 2) {
        const q = s.conversations[i].value.replace('<image>\n', '');
        assert.ok(q.endsWith(`\n${MULTIPLE_CHOICE_PROMPT}`), q);
        const [question, ...options] = q.split('\n').slice(0, -1);
        const letter = s.conversations[i + 1].value;
        letters.set(letter, (letters.get(letter) ?? 0) + 1);
        const chosen = options.find((o) => o.startsWith(`${letter}. `));
        assert.ok(chosen, `answer ${letter} names an option of: ${q}`);
        // the chosen option is the fact's short answer (the facts are recomputed from the context)
        const fact = facts[i / 2];
        assert.equal(question, fact.question);
        assert.equal(chosen.slice(3), fact.short);
        assert.equal(new Set(options.map((o) => o.slice(3))).size, options.length, 'options differ');
        assert.ok(options.every((o, k) => o.startsWith(`${LETTERS[k]}. `)) && options.length >= 2 && options.length <= 4, q);
      }
    }
    assert.ok((letters.get('A') ?? 0) > 0 && (letters.get('B') ?? 0) > 0 && (letters.get('C') ?? 0) > 0, `letters used: ${[...letters]}`);
  });

  test('captions_lead.json: one caption per image that the picture decides: how many shapes and the largest (diagrams: their first caption)', () => {
    const lead = JSON.parse(readFileSync(path.join(dir, 'captions_lead.json'), 'utf8')) as InstructSample[];
    const contexts = readFileSync(path.join(dir, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Context);
    assert.equal(lead.length, contexts.length);
    const area = (b: number[]) => (b[2] - b[0]) * (b[3] - b[1]);
    for (const [i, s] of lead.entries()) {
      const ctx = contexts[i];
      assert.equal(s.image, ctx.image);
      assert.ok(LEAD_PROMPTS.includes(s.conversations[0].value.replace('<image>\n', '')), s.conversations[0].value);
      const caption = s.conversations[1].value;
      if (ctx.arrows) {
        assert.equal(caption, ctx.captions[0]);
        assert.equal(s.about, undefined, `${s.id}: a diagram's caption is about the whole picture`);
        continue;
      }
      const big = ctx.objects.reduce((a, b) => (area(b.box) > area(a.box) || (area(b.box) === area(a.box) && b.box[0] < a.box[0]) ? b : a));
      const named = ctx.objects.length === 1 ? caption.split(' on ')[0].toLowerCase().replace(/^an? /, '') : caption.split(', and the largest is ')[1]?.replace(/^an? |\.$/g, '');
      assert.equal(named, `${big.colour} ${big.class}`, caption);
      assert.deepEqual(s.about, [[ctx.objects.indexOf(big)]], `${s.id}: about the object it names`);
      assert.match(caption, ctx.objects.length === 1 ? /^An? \w+ \w+ on / : /^(Two|Three|Four|Five|Six) shapes on .*, and the largest is /);
      if (ctx.objects.length > 1) assert.ok(caption.startsWith(['Two', 'Three', 'Four', 'Five', 'Six'][ctx.objects.length - 2]), caption);
      assert.ok(caption.includes(`${ctx.background} background`), caption);
    }
    assert.ok(lead.some((s) => s.conversations[0].value.endsWith(PRESET_PROMPTS.short)), 'the batch-captioning preset is among the prompts');
  });

  test('the format checker rejects what breaks the format', () => {
    const good = mix[0];
    const broken = [
      { ...good, conversations: good.conversations.map((t, i) => (i === 0 ? { ...t, value: t.value.replace('<image>\n', '') } : t)) },
      { ...good, conversations: good.conversations.map((t, i) => (i === 1 ? { ...t, value: `${t.value} <image>` } : t)) },
      { ...good, conversations: good.conversations.map((t, i) => (i === 0 ? { ...t, from: 'gpt' } : t)) },
      { ...good, conversations: good.conversations.slice(0, 1) },
      { ...good, image: '' },
    ];
    for (const b of broken) assert.notEqual(formatProblem(b), '', JSON.stringify(b).slice(0, 120));
  });

  test('the LLaVA-1.5 prompts are the paper\'s, and answers have the right shape', () => {
    for (const s of mix) {
      const humans = s.conversations.filter((t) => t.from === 'human').map((t) => t.value);
      const gpts = s.conversations.filter((t) => t.from === 'gpt').map((t) => t.value);
      if (s.id.endsWith('-short')) assert.ok(humans.every((h) => h.endsWith('\nAnswer the question using a single word or phrase.')));
      if (s.id.endsWith('-mc')) {
        assert.ok(humans[0].endsWith("\nAnswer with the option's letter from the given choices directly."));
        assert.match(gpts[0], /^[A-D]$/);
        assert.ok(/\nA\. .*\nB\. /.test(humans[0]), `${s.id}: at least two options`);
        assert.ok(humans[0].includes(`\n${gpts[0]}. `), 'the answer letter is one of the options');
      }
      if (s.id.endsWith('-ground')) {
        assert.ok(humans.every((h) => /Please provide the bounding box coordinate of the region this sentence describes: \S/.test(h)));
        for (const g of gpts) assert.match(g, /^\[\d\.\d\d, \d\.\d\d, \d\.\d\d, \d\.\d\d\]$/);
      }
    }
  });

  test('the same seed writes the same bytes', async () => {
    const again = mkdtempSync(path.join(os.tmpdir(), 'llava-train-'));
    try {
      await writeDataset({ out: again, count: 40, seed: 3, split: 'train' });
      for (const f of ['llava_v1_5_mix.json', 'vqa.json', 'contexts.jsonl', 'captions.json']) assert.ok(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(again, f))), f);
      for (const f of readdirSync(path.join(dir, 'images')).slice(0, 10)) assert.ok(readFileSync(path.join(dir, 'images', f)).equals(readFileSync(path.join(again, 'images', f))), f);
    } finally {
      rmSync(again, { recursive: true, force: true });
    }
  });

  test('--wordings: the same samples with about half of the template questions in other wordings, nothing else moved', async () => {
    const worded = mkdtempSync(path.join(os.tmpdir(), 'llava-train-'));
    try {
      await writeDataset({ out: worded, count: 40, seed: 3, split: 'train', wordings: true });
      for (const f of ['contexts.jsonl', 'captions.json', 'captions_lead.json', 'detail.json']) assert.ok(readFileSync(path.join(dir, f)).equals(readFileSync(path.join(worded, f))), `${f}: no template question, the same bytes`);
      let templates = 0;
      let moved = 0;
      for (const f of ['llava_v1_5_mix.json', 'vqa.json', 'mcq.json', 'conversation.json']) {
        const plain = JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as InstructSample[];
        const other = JSON.parse(readFileSync(path.join(worded, f), 'utf8')) as InstructSample[];
        assert.deepEqual(other.map((x) => x.id), plain.map((x) => x.id), f);
        for (const [k, a] of plain.entries()) {
          const b = other[k];
          assert.deepEqual(b.about, a.about, a.id);
          assert.equal(formatProblem(b), '', b.id);
          for (const [t, turn] of a.conversations.entries()) {
            if (turn.from === 'gpt') {
              assert.equal(b.conversations[t].value, turn.value, `${a.id}: answers unchanged`);
              continue;
            }
            const lines = turn.value.split('\n');
            const again = b.conversations[t].value.split('\n');
            assert.equal(again.length, lines.length);
            for (const [i, line] of lines.entries()) {
              const others = wordingsOf(line);
              if (others.length) templates++;
              if (again[i] === line) continue;
              moved++;
              assert.ok(others.includes(again[i]), `${a.id}: ${JSON.stringify(again[i])} is a wording of ${JSON.stringify(line)}`);
              assert.equal(topicOf(again[i]), topicOf(line), `${again[i]}: the trainer's topic stays`);
            }
          }
        }
      }
      assert.ok(templates > 500 && moved > 0.35 * templates && moved < 0.65 * templates, `${moved} of ${templates} template questions reworded`);
      const mix = JSON.parse(readFileSync(path.join(worded, 'llava_v1_5_mix.json'), 'utf8')) as InstructSample[];
      assert.deepEqual(mix.map(rewordSample), mix.map(rewordSample), 'the same sample always gets the same words');
    } finally {
      rmSync(worded, { recursive: true, force: true });
    }
  });

  test('the generator command refuses the held-out split and writes a set', async () => {
    await assert.rejects(generateMain(['--out', path.join(dir, 'x'), '--split', 'heldout', '--count', '1']), /reserved/);
    const out = path.join(dir, 'cmd');
    assert.equal(await generateMain(['--out', out, '--count', '2', '--max-side', '300']), 0);
    assert.equal(readdirSync(path.join(out, 'images')).length, 2);
  });
});

describe('facts are true of the boxes', () => {
  test('the trainer\'s topic of a question (pack.ts, from its text) is the category of the fact that wrote it', () => {
    const diagrams = Array.from({ length: 20 }, (_, i) => makeScene(`t-${i}`, `topic:${i}`, { diagramRate: 1 }));
    for (const s of [...scenes.slice(0, 80), ...diagrams]) {
      const ctx = sceneContext(s, 'x.png');
      for (const f of imageFacts(ctx, new Rng(s.id))) assert.equal(topicOf(shortAnswerQuestion(f.question)), f.category, f.question);
    }
  });

  test('every template question of a shape scene has other wordings that ask the same thing with the same answer words', () => {
    for (const s of scenes.slice(0, 80)) {
      const ctx = sceneContext(s, 'x.png');
      for (const f of imageFacts(ctx, new Rng(s.id))) {
        const others = wordingsOf(f.question);
        assert.ok(others.length >= 2, `${f.question}: other wordings`);
        for (const o of others) {
          assert.notEqual(o, f.question);
          assert.equal(topicOf(shortAnswerQuestion(o)), f.category, o);
          // a choice question names its answers (left/right, top/bottom), a relation its relation, a phrase its object
          if (f.kind === 'position-image' && f.distractors.length === 1) for (const w of [f.short, ...f.distractors]) assert.ok(o.includes(w), `${o}: names ${w}`);
          const relation = / (to the left of|to the right of|above|below) the /.exec(f.question);
          if (f.kind === 'position-relative') assert.ok(relation && o.includes(` ${relation[1]} the `), `${o}: asks ${relation?.[1]}`);
          for (const i of f.about) {
            const phrase = referringPhrase(ctx.objects[i], ctx.objects, ctx.width, ctx.height);
            if (phrase && f.question.includes(phrase)) assert.ok(o.includes(phrase), `${o}: keeps ${phrase}`);
          }
        }
      }
    }
  });

  test('counts, existence and relations', () => {
    for (const s of scenes.slice(0, 80)) {
      const ctx = sceneContext(s, 'x.png');
      for (const f of imageFacts(ctx, new Rng(s.id))) {
        if (f.kind === 'count-all') assert.equal(f.short, String(s.objects.length));
        const ex = /^Is there an? (\w+) (\w+) in the image\?$/.exec(f.question);
        if (ex) assert.equal(f.short, s.objects.some((o) => o.colour === ex[1] && o.shape === ex[2]) ? 'yes' : 'no', `${s.id}: ${f.question}`);
        const cls = /^How many (\w+)s are there\?$/.exec(f.question);
        if (cls) assert.equal(f.short, String(s.objects.filter((o) => o.shape === cls[1]).length));
        assert.ok(!f.distractors.includes(f.short), `${s.id}: the right answer is not a distractor`);
        if (f.kind === 'position-relative') {
          const m = /^Is the (.+) (to the left of|to the right of|above|below) the (.+)\?$/.exec(f.question);
          assert.ok(m, f.question);
          const find = (phrase: string) => ctx.objects.filter((o) => phrase.startsWith(`${o.colour} ${o.class}`) || phrase.includes(` ${o.colour} ${o.class}`) || phrase === `${o.size} ${o.colour} ${o.class}`);
          const [a, b] = [find(m[1]), find(m[3])];
          if (a.length === 1 && b.length === 1) assert.equal(f.short, isRelated(a[0], b[0], m[2] as Relation) ? 'yes' : 'no', `${s.id}: ${f.question}`);
        }
      }
    }
  });
});

describe('grounding boxes in the padded-square frame', () => {
  test('answers round-trip to the true boxes within the 2-decimal quantisation (half a hundredth of the padded side)', () => {
    let checked = 0;
    for (const s of scenes) {
      const side = Math.max(s.width, s.height);
      for (const o of s.objects) {
        const back = answerToPixelBox(boxAnswer(o.box, s.width, s.height), s.width, s.height);
        assert.ok(back, `${s.id}: the answer parses`);
        const bound = 0.005 * side + 1e-6;
        for (let k = 0; k < 4; k++) assert.ok(Math.abs(back![k] - o.box[k]) <= bound, `${s.id}: ${back} vs ${o.box} (bound ${bound})`);
        if (side <= 200) for (let k = 0; k < 4; k++) assert.ok(Math.abs(back![k] - o.box[k]) <= 1, 'within 1 px at 200 px');
        checked++;
      }
    }
    assert.ok(checked > 300);
  });

  test("the pad geometry is the engine's own (tiny-llava preprocessed in 'pad' mode)", async () => {
    const [dir] = await ensureFixtures(['tiny-llava']);
    const model = await loadModel(dir, { provider: 'cpu', overrides: { preprocessMode: 'pad' } });
    try {
      for (const s of scenes.filter((x) => x.width !== x.height).slice(0, 6)) {
        const { geometry } = await model.preprocess({ bytes: await renderScene(s), name: s.id });
        const mine = paddedSquareGeometry(s.width, s.height, geometry.inputWidth);
        for (const k of ['originalWidth', 'originalHeight', 'padLeft', 'padTop', 'cropLeft', 'cropTop', 'inputWidth', 'inputHeight'] as const) assert.equal(mine[k], geometry[k], `${s.id}: ${k}`);
        assert.ok(Math.abs(mine.scaleX - geometry.scaleX) < 1e-9 && Math.abs(mine.scaleY - geometry.scaleY) < 1e-9, `${s.id}: scale`);
      }
    } finally {
      await model.dispose();
    }
  });

  test('region descriptions and grounding answers name the same boxes', () => {
    const s = scenes.find((x) => x.objects.length >= 3)!;
    const t = templateSamples(sceneContext(s, 'x.png'));
    const region = t.formats15.find((x) => x.id.endsWith('-region'))!;
    for (let i = 0; i < region.conversations.length; i += 2) {
      const box = answerToPixelBox(region.conversations[i].value, s.width, s.height)!;
      const said = region.conversations[i + 1].value.toLowerCase();
      const hit = s.objects.find((o) => o.box.every((v, k) => Math.abs(v - box[k]) <= 0.005 * Math.max(s.width, s.height) + 1e-6));
      assert.ok(hit && said === `${/^[aeiou]/.test(hit.size) ? 'an' : 'a'} ${hit.size} ${hit.colour} ${hit.shape}.`, `${said} names the object at ${box}`);
    }
  });
});
