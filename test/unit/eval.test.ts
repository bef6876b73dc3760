// src/eval: letter parsing, answer normalisation, IoU, the paper's ScienceQA columns, judge score
// parsing and the relative score, data-file errors, and runEval's bookkeeping with test answerers
// (a perfect one, a wrong one, one that fails on an image) over the committed held-out set.

import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { EvalDataError, JudgeError, type ImageGeometry } from '../../src/core';
import {
  accuracyRows,
  iou,
  loadGrounding,
  loadScienceQa,
  loadShortAnswers,
  modelAnswerer,
  multipleChoicePrompt,
  normaliseAnswer,
  paperGroups,
  parseChoice,
  parseScores,
  predictedBox,
  relativeScores,
  runEval,
  shortAnswerCorrect,
  type Answerer,
} from '../../src/eval';
import { boxAnswer, paddedSquareGeometry } from '../../training/data/frame';

const HELDOUT = path.join(__dirname, '..', 'data', 'heldout');

describe('multiple choice', () => {
  const choices = ['red', 'blue', 'a green star', 'yes'];
  test('letters are read the way LLaVA scores ScienceQA', () => {
    const cases: [string, number | undefined][] = [
      ['B', 1], ['B.', 1], ['(C)', 2], [' D\n', 3], ['C. a green star', 2], ['The answer is A.', 0], ['the answer is (B)', 1],
      ['A red circle is there.', undefined], ['E', undefined], ['b', undefined], ['', undefined], ['blue', 1], ['A green star', 2], ['I am not sure', undefined],
    ];
    for (const [text, want] of cases) assert.equal(parseChoice(text, choices), want, JSON.stringify(text));
  });

  test("the prompt is LLaVA-1.5's", () => {
    assert.equal(
      multipleChoicePrompt({ question: 'What colour?', choices: ['red', 'blue'], hint: 'A hint.' }),
      "Context: A hint.\nWhat colour?\nA. red\nB. blue\nAnswer with the option's letter from the given choices directly.",
    );
    assert.equal(multipleChoicePrompt({ question: 'Q?', choices: ['x', 'y'], hint: '' }).split('\n')[0], 'Q?');
  });

  test("the paper's columns: subject, context modality, grade, and the category", () => {
    const base = { id: '1', question: '', choices: ['a', 'b'], answer: 0, category: 'Weather' };
    assert.deepEqual(paperGroups({ ...base, hint: '', image: '/x.png', subject: 'natural science', grade: 'grade3' }), ['subject NAT', 'context IMG', 'grade G1-6', 'category Weather']);
    assert.deepEqual(paperGroups({ ...base, hint: 'h', image: undefined, subject: 'language science', grade: 'grade11' }), ['subject LAN', 'context TXT', 'grade G7-12', 'category Weather']);
    assert.deepEqual(paperGroups({ ...base, hint: '', image: undefined, subject: 'social science', grade: '', category: '' }), ['subject SOC', 'context NO']);
  });

  test('accuracy rows count each group and the average', () => {
    const rows = accuracyRows([
      { groups: ['category colour'], correct: true },
      { groups: ['category colour'], correct: false },
      { groups: ['category shape'], correct: true },
    ]);
    assert.deepEqual(rows, [
      { group: 'category colour', n: 2, correct: 1, accuracy: 50 },
      { group: 'category shape', n: 1, correct: 1, accuracy: 100 },
      { group: 'average', n: 3, correct: 2, accuracy: (2 / 3) * 100 },
    ]);
  });
});

describe('the model answerer', () => {
  /** a stand-in for LlavaModel.generate that records each conversation and answers with its turn count */
  function recordingModel() {
    const seen: unknown[] = [];
    const model = {
      async *generate(turns: unknown[]) {
        seen.push(structuredClone(turns));
        yield { type: 'done', text: `answer ${turns.length}`, images: [] };
      },
    };
    return { seen, model: model as never };
  }
  test('one question per conversation, the image with it', async () => {
    const { seen, model } = recordingModel();
    const a = await modelAnswerer(model).answer('/img.png', 'Q?', { maxNewTokens: 4 });
    assert.equal(a.text, 'answer 1');
    assert.deepEqual(seen, [[{ role: 'user', text: 'Q?', images: [{ path: '/img.png' }] }]]);
  });
  test('--after: the question follows the first one and the model\'s own answer to it', async () => {
    const { seen, model } = recordingModel();
    const a = await modelAnswerer(model, { after: 'First?' }).answer('/img.png', 'Q?', { maxNewTokens: 4 });
    assert.equal(a.text, 'answer 3');
    assert.deepEqual(seen, [
      [{ role: 'user', text: 'First?', images: [{ path: '/img.png' }] }],
      [{ role: 'user', text: 'First?', images: [{ path: '/img.png' }] }, { role: 'assistant', text: 'answer 1' }, { role: 'user', text: 'Q?' }],
    ]);
  });
});

describe('short answers', () => {
  test('normalised exact match', () => {
    assert.equal(normaliseAnswer('  The Red. '), 'red');
    assert.equal(normaliseAnswer('Two'), '2');
    assert.equal(normaliseAnswer('gray'), 'grey');
    assert.equal(normaliseAnswer('top-left'), 'top left');
    assert.ok(shortAnswerCorrect('Yes.', 'yes'));
    assert.ok(shortAnswerCorrect('3', 'three'));
    assert.ok(shortAnswerCorrect('Top left\nbecause it is near the corner', 'top left'));
    assert.ok(!shortAnswerCorrect('red circle', 'red'));
    assert.ok(!shortAnswerCorrect('no', 'yes'));
    assert.ok(!shortAnswerCorrect('', 'yes'));
  });
});

describe('grounding', () => {
  test('IoU on hand-made boxes', () => {
    assert.equal(iou([0, 0, 10, 10], [0, 0, 10, 10]), 1);
    assert.equal(iou([0, 0, 10, 10], [10, 0, 20, 10]), 0, 'touching edges');
    assert.equal(iou([0, 0, 10, 10], [5, 0, 15, 10]), 50 / 150);
    assert.equal(iou([0, 0, 10, 10], [2, 2, 8, 8]), 36 / 100);
    assert.equal(iou([0, 0, 10, 10], [20, 20, 30, 30]), 0);
    assert.equal(iou([0, 0, 0, 10], [0, 0, 10, 10]), 0, 'an empty box');
  });

  test('a norm1 answer maps back through the padded frame onto the true box', () => {
    const g: ImageGeometry = paddedSquareGeometry(600, 300);
    const truth: [number, number, number, number] = [100, 50, 220, 170];
    const box = predictedBox(`It is here: ${boxAnswer(truth, 600, 300)}`, 'norm1', g)!;
    assert.ok(iou(box, truth) > 0.9, `${box}`); // 2 decimals of a 600 px side: up to 3 px per edge
    assert.equal(predictedBox('no box at all', 'norm1', g), undefined);
    assert.equal(predictedBox('[0.1, 0.0, 0.9, 0.2]', 'norm1', g), undefined, 'a box wholly in the top padding is dropped');
  });
});

describe('judged relative score', () => {
  test('scores on the first line; relative = model / reference x 100 per category and overall', () => {
    assert.deepEqual(parseScores('8 6\nAssistant 1 is more precise.'), [8, 6]);
    assert.deepEqual(parseScores('7, 7.5'), [7, 7.5]);
    assert.equal(parseScores('Assistant 1: 8\nAssistant 2: 6'), undefined);
    assert.equal(parseScores('8 6 4'), undefined);
    assert.equal(parseScores('11 3'), undefined);
    const s = relativeScores([
      { category: 'conv', scores: [8, 6] },
      { category: 'conv', scores: [10, 8] },
      { category: 'detail', scores: [5, 5] },
      { category: 'detail' },
    ]);
    assert.deepEqual(s.map((x) => [x.category, x.n, x.relative]), [['conv', 2, (7 / 9) * 100], ['detail', 1, 100], ['all', 3, (19 / 23) * 100]]);
  });
});

describe('data files', () => {
  let dir: string;
  before(() => (dir = mkdtempSync(path.join(os.tmpdir(), 'llava-evaldata-'))));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('errors name the file (and line) and carry the EVAL_DATA code', async () => {
    writeFileSync(path.join(dir, 'short_answer.jsonl'), '{"question_id":"a","image":"x.png","text":"q","answer":"a"}\n{broken\n');
    await assert.rejects(loadShortAnswers(path.join(dir, 'short_answer.jsonl')), (e: unknown) => e instanceof EvalDataError && e.code === 'EVAL_DATA' && /short_answer\.jsonl: line 2 is not JSON/.test(e.message));
    writeFileSync(path.join(dir, 'g.jsonl'), '{"question_id":"a","image":"../../etc/passwd","phrase":"p","text":"t","box":[0,0,1,1]}\n');
    await assert.rejects(loadGrounding(path.join(dir, 'g.jsonl')), /g\.jsonl: image path "..\/..\/etc\/passwd" leaves the data folder/);
    writeFileSync(path.join(dir, 'g.jsonl'), '{"question_id":"a","image":"x.png","phrase":"p","text":"t","box":[5,0,1,1]}\n');
    await assert.rejects(loadGrounding(path.join(dir, 'g.jsonl')), /line 1: "box" must be/);
    writeFileSync(path.join(dir, 'problems.json'), JSON.stringify({ 1: { question: 'q', choices: ['a', 'b'], answer: 2, image: 'image.png' } }));
    writeFileSync(path.join(dir, 'pid_splits.json'), JSON.stringify({ test: ['1'] }));
    await assert.rejects(loadScienceQa(dir, 'test'), /problems\.json: pid 1: "answer" must index "choices"/);
    await assert.rejects(loadScienceQa(dir, 'val'), /pid_splits\.json: has no "val" list/);
    mkdirSync(path.join(dir, 'adir.jsonl'));
    await assert.rejects(loadShortAnswers(path.join(dir, 'adir.jsonl')), /adir\.jsonl: not a regular file/);
    await assert.rejects(loadShortAnswers(path.join(dir, 'missing.jsonl')), /missing\.jsonl: no such file/);
  });

  test('the held-out set loads: ScienceQA layout, short answers, grounding, bench', async () => {
    const mc = await loadScienceQa(HELDOUT, 'test');
    assert.ok(mc.length >= 60);
    assert.ok(mc.every((m) => m.image && m.image.startsWith(path.join(HELDOUT, 'images', 'test', m.id) + path.sep)));
    assert.ok((await loadShortAnswers(path.join(HELDOUT, 'short_answer.jsonl'))).length >= mc.length);
    assert.ok((await loadGrounding(path.join(HELDOUT, 'grounding.jsonl'))).length >= mc.length);
  });
});

/** Answers from the held-out files themselves: what a perfect model would say. */
async function oracle(): Promise<Answerer> {
  const mc = await loadScienceQa(HELDOUT, 'test');
  const short = await loadShortAnswers(path.join(HELDOUT, 'short_answer.jsonl'));
  const ground = await loadGrounding(path.join(HELDOUT, 'grounding.jsonl'));
  const { readFileSync } = await import('node:fs');
  const sizes = new Map(readFileSync(path.join(HELDOUT, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l)).map((c) => [path.join(HELDOUT, c.image), [c.width, c.height]]));
  return {
    async answer(image, question) {
      const [w, h] = sizes.get(image!)!;
      const geometry = paddedSquareGeometry(w, h);
      const m = mc.find((x) => x.image === image && multipleChoicePrompt(x) === question);
      if (m) return { text: 'ABCDEF'[m.answer], geometry };
      const s = short.find((x) => x.image === image && x.text === question);
      if (s) return { text: s.answer.toUpperCase() + '.', geometry };
      const g = ground.find((x) => x.image === image && x.text === question);
      if (g) return { text: boxAnswer(g.box, w, h), geometry };
      throw new Error(`oracle: unknown question ${question}`);
    },
  };
}

describe('runEval', () => {
  test('a perfect answerer scores 100 % everywhere; the counts per category add up', async () => {
    const r = await runEval(await oracle(), { data: HELDOUT, frame: 'norm1' });
    const mc = await loadScienceQa(HELDOUT, 'test');
    const avg = r.scienceqa!.rows.at(-1)!;
    assert.deepEqual([avg.group, avg.n, avg.accuracy], ['average', mc.length, 100]);
    const cats = r.scienceqa!.rows.filter((x) => x.group.startsWith('category '));
    assert.deepEqual(cats.map((c) => c.group).sort(), ['category arrow', 'category colour', 'category count', 'category existence', 'category position', 'category shape']);
    assert.equal(cats.reduce((s, c) => s + c.n, 0), mc.length);
    assert.ok(cats.every((c) => c.n >= 10), 'every category has at least 10 problems');
    assert.equal(r.short!.rows.at(-1)!.accuracy, 100);
    assert.equal(r.grounding!.rate, 100);
    assert.ok(r.grounding!.meanIou > 0.85, `mean IoU ${r.grounding!.meanIou} (2-decimal quantisation only)`);
    assert.equal(r.judged, undefined, 'no judge, no judged task');
  });

  test('a wrong answerer scores 0 and unparsed answers are counted; a failing image is an error, not a crash', async () => {
    const wrong: Answerer = {
      async answer(image) {
        if (image?.includes('heldout-000001')) throw new EvalDataError(image, 'cannot decode');
        return { text: 'purple elephant', geometry: paddedSquareGeometry(300, 300) };
      },
    };
    const r = await runEval(wrong, { data: HELDOUT, frame: 'norm1', limit: 5, tasks: ['scienceqa', 'short', 'grounding'] });
    assert.equal(r.scienceqa!.rows.at(-1)!.n, 5);
    assert.equal(r.scienceqa!.rows.at(-1)!.correct, 0);
    assert.equal(r.scienceqa!.errors, 1);
    assert.equal(r.scienceqa!.unparsed, 4);
    assert.match(r.scienceqa!.items[1].error!, /cannot decode \[EVAL_DATA\]/);
    assert.equal(r.short!.rows.at(-1)!.correct, 0);
    assert.deepEqual([r.grounding!.hits, r.grounding!.unparsed], [0, 5 - r.grounding!.errors]);
  });

  test('the judged task rates through an OpenAI-compatible endpoint (fake, 127.0.0.1)', async () => {
    const seen: { messages: { role: string; content: string }[] }[] = [];
    const server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push(JSON.parse(body));
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ choices: [{ message: { role: 'assistant', content: seen.length === 2 ? 'no scores here' : '8 4\nThe reference is exact.' } }] }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
      const answerer: Answerer = { answer: async () => ({ text: 'Some shapes.' }) };
      const r = await runEval(answerer, { data: HELDOUT, frame: 'norm1', tasks: ['judged'], limit: 3, judge: { url, model: 'judge' } });
      assert.equal(seen.length, 3);
      assert.equal(seen[0].messages[0].role, 'system');
      assert.match(seen[0].messages[1].content, /\[Context\]\nImage size: \d+ x \d+ pixels\.[\s\S]*\[Assistant 2\]\nSome shapes\.\n\[End of Assistant 2\]/);
      assert.equal(r.judged!.unparsed, 1);
      const all = r.judged!.scores.at(-1)!;
      assert.deepEqual([all.category, all.n, all.relative], ['all', 2, 50]);
      await assert.rejects(
        runEval(answerer, { data: HELDOUT, frame: 'norm1', tasks: ['judged'], limit: 1, judge: { url: 'http://127.0.0.1:1/v1', model: 'judge' } }),
        (e: unknown) => e instanceof JudgeError && /127\.0\.0\.1:1\/v1\/chat\/completions/.test(e.message),
      );
    } finally {
      server.close();
    }
  });
});
