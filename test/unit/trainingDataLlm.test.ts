// `generate.ts --llm URL`: the paper's three types written through an OpenAI-compatible chat endpoint
// (a fake one on 127.0.0.1): each request carries the system prompt, a few-shot example and this
// image's captions and boxes as text; the responses become valid LLaVA-Instruct samples; a response
// that does not parse is an error naming the image.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { main as generateMain } from '../../training/data/generate';
import { parseQaBlocks, SYSTEM_PROMPTS, FEW_SHOT } from '../../training/data/llm';
import { formatProblem, type InstructSample } from '../../training/data/llavaFormat';

interface Seen {
  url: string;
  authorization?: string;
  body: { model: string; messages: { role: string; content: string }[] };
}

function fakeChatServer(reply: (body: Seen['body']) => string) {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c) => (data += c));
    req.on('end', () => {
      const body = JSON.parse(data) as Seen['body'];
      seen.push({ url: req.url ?? '', authorization: req.headers.authorization, body });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'x', object: 'chat.completion', choices: [{ index: 0, message: { role: 'assistant', content: reply(body) }, finish_reason: 'stop' }] }));
    });
  });
  return { server, seen };
}

const CONVERSATION = 'Question:\nWhat colour is the star?\n===\nAnswer:\nThe star is red.\n===\nQuestion:\nIs there a blue circle?\n===\nAnswer:\nNo, there is no blue circle.\n===';
const DETAIL = 'The picture shows a few shapes on a light background.';
const COMPLEX = 'Question:\nHow many shapes remain if one is removed?\n===\nAnswer:\nOne fewer than before.';

describe('--llm: the paper\'s three types through an OpenAI-compatible endpoint', () => {
  let dir: string;
  let url: string;
  let fake: ReturnType<typeof fakeChatServer>;
  let broken = false;
  before(async () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'llava-llm-'));
    fake = fakeChatServer((body) => {
      if (broken) return 'I would rather not.';
      const sys = body.messages[0].content;
      return sys === SYSTEM_PROMPTS.conversation ? CONVERSATION : sys === SYSTEM_PROMPTS.detail ? DETAIL : COMPLEX;
    });
    await new Promise<void>((r) => fake.server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(fake.server.address() as AddressInfo).port}/v1`;
  });
  after(() => {
    fake.server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('three requests per image with system prompt, few-shot example and the context; valid samples out', async () => {
    const out = path.join(dir, 'ok');
    process.env.OPENAI_API_KEY = 'test-key';
    try {
      assert.equal(await generateMain(['--out', out, '--count', '2', '--max-side', '300', '--llm', url, '--llm-model', 'judge-7b']), 0);
    } finally {
      delete process.env.OPENAI_API_KEY;
    }
    assert.equal(fake.seen.length, 6);
    const contexts = readFileSync(path.join(out, 'contexts.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    for (const [i, s] of fake.seen.entries()) {
      assert.equal(s.url, '/v1/chat/completions');
      assert.equal(s.authorization, 'Bearer test-key');
      assert.equal(s.body.model, 'judge-7b');
      const m = s.body.messages;
      assert.deepEqual(m.map((x) => x.role), ['system', 'user', 'assistant', 'user']);
      assert.ok(Object.values(SYSTEM_PROMPTS).includes(m[0].content));
      assert.ok(Object.values(FEW_SHOT).includes(m[2].content), 'a few-shot response');
      const ctx = contexts[Math.floor(i / 3)];
      for (const c of ctx.captions) assert.ok(m[3].content.includes(c), 'the captions as text');
      for (const o of ctx.objects) assert.ok(m[3].content.includes(`${o.size} ${o.colour} ${o.class}: [${o.box.join(', ')}]`), 'every box as text');
    }
    const conv = JSON.parse(readFileSync(path.join(out, 'conversation.json'), 'utf8')) as InstructSample[];
    assert.equal(conv.length, 2);
    assert.deepEqual(conv[0].conversations.map((t) => t.value), ['<image>\nWhat colour is the star?', 'The star is red.', 'Is there a blue circle?', 'No, there is no blue circle.']);
    const detail = JSON.parse(readFileSync(path.join(out, 'detail.json'), 'utf8')) as InstructSample[];
    assert.equal(detail[0].conversations[1].value, DETAIL);
    const complex = JSON.parse(readFileSync(path.join(out, 'complex_reasoning.json'), 'utf8')) as InstructSample[];
    assert.equal(complex[0].conversations[0].value, '<image>\nHow many shapes remain if one is removed?');
    for (const s of [...conv, ...detail, ...complex]) assert.equal(formatProblem(s), '');
  });

  test('a response without Question/Answer blocks is an error naming the image', async () => {
    broken = true;
    try {
      await assert.rejects(generateMain(['--out', path.join(dir, 'bad'), '--count', '1', '--max-side', '300', '--llm', url]), /train-000000\.(png|jpg): the conversation response has no Question\/Answer blocks/);
    } finally {
      broken = false;
    }
  });

  test('Question/Answer blocks parse; stray text ends them', () => {
    assert.deepEqual(parseQaBlocks('Question: A?\n===\nAnswer: B.\n===\nQuestion:\nC?\n===\nAnswer:\nD.'), [['A?', 'B.'], ['C?', 'D.']]);
    assert.deepEqual(parseQaBlocks('no blocks here'), []);
  });
});
