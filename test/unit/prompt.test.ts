// renderPrompt / buildPromptIds on the real llava-1.5-7b-hf folder. Independent references: the chat template's
// own text (what it must print) and transformers.js (apply_chat_template, LlavaProcessor) on the same files.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readModelFolder, type ModelSpec } from '../../src/engine/modelFolder';
import { loadTokenizer, type Tokenizer } from '../../src/engine/tokenizer';
import { renderPrompt, buildPromptIds, PROMPT_FORMATS } from '../../src/engine/prompt';
import { EngineError } from '../../src/core/errors';
import type { ChatTurn } from '../../src/core/types';
import { makeLlava15Folder, readLlava15Json } from '../data/real-configs/llava15';

const IMG = { path: '/nonexistent/cat.png' };
type RefTokenizer = {
  encode: (t: string, o?: object) => number[];
  apply_chat_template: (m: unknown[], o: object) => string;
};
type RefProcessor = ((image: unknown, text: string) => Promise<{ input_ids: { data: ArrayLike<bigint | number> } }>);

let spec: ModelSpec;
/** chat_template.json's template (LF, as on the Hub); the stored .jinja copy has CRLF line ends (see SOURCES.md). */
let hubTemplate: string;
let tok: Tokenizer;
let refTok: RefTokenizer;
let refProcessor: RefProcessor;
let makeImage: (w: number, h: number) => unknown;
let cleanup: () => void = () => {};

before(async () => {
  const folder = makeLlava15Folder();
  cleanup = folder.cleanup;
  spec = await readModelFolder(folder.dir);
  hubTemplate = readLlava15Json('chat_template.json').chat_template as string;
  tok = loadTokenizer(spec);
  const tjs = await import('@huggingface/transformers');
  tjs.env.allowRemoteModels = false;
  tjs.env.localModelPath = path.dirname(folder.dir) + path.sep;
  refTok = (await tjs.AutoTokenizer.from_pretrained(path.basename(folder.dir))) as unknown as RefTokenizer;
  const processor = await tjs.AutoProcessor.from_pretrained(path.basename(folder.dir));
  refProcessor = ((image: unknown, text: string) => (processor as unknown as (i: unknown, t: string) => Promise<never>)(image, text)) as RefProcessor;
  makeImage = (w, h) => new tjs.RawImage(new Uint8ClampedArray(w * h * 3).fill(90), w, h, 3);
});
after(() => cleanup());

/** The llava-hf content-list messages transformers' processors pass to chat templates. */
function hfMessages(turns: ChatTurn[]) {
  return turns.map((t) => ({
    role: t.role,
    content: [...(t.images ?? []).map(() => ({ type: 'image' })), { type: 'text', text: t.text }],
  }));
}

describe('renderPrompt with the folder chat template', () => {
  test('one turn renders as the template text prescribes, and as transformers.js renders it', () => {
    const turns: ChatTurn[] = [{ role: 'user', text: 'What is this?', images: [IMG] }];
    const text = renderPrompt(spec, turns);
    // Template: role.upper() + ': ', then '<image>\n' per image, then text + ' ', then 'ASSISTANT:'.
    assert.equal(text, 'USER: <image>\nWhat is this? ASSISTANT:');
    const ref = refTok.apply_chat_template(hfMessages(turns), { chat_template: hubTemplate, tokenize: false, add_generation_prompt: true });
    assert.equal(text, ref);
  });

  test('multi-turn with two images ({% generation %} tags around assistant text are handled)', () => {
    const turns: ChatTurn[] = [
      { role: 'user', text: 'Compare these.', images: [IMG, IMG] },
      { role: 'assistant', text: 'The left one is larger.' },
      { role: 'user', text: 'Why?' },
    ];
    const text = renderPrompt(spec, turns);
    assert.equal(text, 'USER: <image>\n<image>\nCompare these. ASSISTANT: The left one is larger. USER: Why? ASSISTANT:');
    assert.ok(spec.chatTemplate!.includes('{% generation %}'), 'the real template does use the tag');
    assert.equal(text, refTok.apply_chat_template(hfMessages(turns), { chat_template: hubTemplate, tokenize: false, add_generation_prompt: true }));
    assert.equal(renderPrompt(spec, turns, { addGenerationPrompt: false }), text.slice(0, -'ASSISTANT:'.length));
  });

  test('a CRLF template renders like Jinja2 (newlines normalised) and like the LF original', () => {
    assert.ok(spec.chatTemplate!.includes("'<image>\r\n'"), 'the stored .jinja really has CRLF inside the literal');
    const turns: ChatTurn[] = [{ role: 'user', text: 'Q', images: [IMG] }];
    assert.equal(renderPrompt(spec, turns), renderPrompt({ ...spec, chatTemplate: hubTemplate }, turns));
    assert.ok(!renderPrompt(spec, turns).includes('\r'));
  });

  test('answerPrefix goes where the answer text would start (after the template\'s " ")', () => {
    const text = renderPrompt(spec, [{ role: 'user', text: 'Describe.', images: [IMG] }], { answerPrefix: 'The image shows' });
    assert.equal(text, 'USER: <image>\nDescribe. ASSISTANT: The image shows');
  });

  test('a literal "<image>" in the user text does not become a placeholder', () => {
    const text = renderPrompt(spec, [{ role: 'user', text: 'What does the HTML tag <image> do?' }]);
    assert.equal(text.split('<image>').length, 1);
    assert.deepEqual(buildPromptIds(tok, spec, text, []).imageSpans, []);
  });

  test('string-content templates (ChatML tokenizers) get "<image>\\n" before the text', () => {
    const chatml = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";
    const s = { ...spec, chatTemplate: chatml };
    // Real output of llava-interleave-qwen-0.5b-hf's template for this conversation (outlines PR #1052).
    assert.equal(renderPrompt(s, [{ role: 'user', text: 'What are these?', images: [IMG] }]),
      '<|im_start|>user\n<image>\nWhat are these?<|im_end|>\n<|im_start|>assistant\n');
  });

  test('bos_token / eos_token are passed to the template', () => {
    const s = { ...spec, chatTemplate: '{{ bos_token }}{% for m in messages %}{{ m.content[0].text if m.content is not string else m.content }}{{ eos_token }}{% endfor %}' };
    assert.equal(renderPrompt(s, [{ role: 'user', text: 'hi' }]), '<s>hi</s>');
  });
});

describe('renderPrompt with named formats', () => {
  test('vicuna_v1 is the original LLaVA-1.5 conversation', () => {
    const s = { ...spec, promptFormat: 'vicuna_v1' as const };
    const sys = "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite answers to the user's questions.";
    assert.equal(renderPrompt(s, [{ role: 'user', text: 'What is this?', images: [IMG] }]), `${sys} USER: <image>\nWhat is this? ASSISTANT:`);
    assert.equal(
      renderPrompt(s, [{ role: 'user', text: 'Q1', images: [IMG] }, { role: 'assistant', text: 'A1' }, { role: 'user', text: 'Q2' }], { answerPrefix: 'Yes' }),
      `${sys} USER: <image>\nQ1 ASSISTANT: A1</s>USER: Q2 ASSISTANT: Yes`,
    );
  });

  test('chatml, with and without a system prompt', () => {
    const s = { ...spec, promptFormat: 'chatml' as const };
    assert.equal(PROMPT_FORMATS.chatml.defaultSystem, undefined);
    assert.equal(renderPrompt(s, [{ role: 'user', text: 'What is this?', images: [IMG] }]),
      '<|im_start|>user\n<image>\nWhat is this?<|im_end|>\n<|im_start|>assistant\n');
    assert.equal(renderPrompt(s, [{ role: 'user', text: 'Hi', images: [IMG] }], { system: 'Answer the question.', answerPrefix: 'A' }),
      '<|im_start|>system\nAnswer the question.<|im_end|>\n<|im_start|>user\n<image>\nHi<|im_end|>\n<|im_start|>assistant\nA');
  });
});

describe('buildPromptIds', () => {
  test('ids equal transformers.js LlavaProcessor ids (336x336 image: 24*24 + 1 = 577 tokens by its arithmetic)', async () => {
    const prompts = [
      renderPrompt(spec, [{ role: 'user', text: 'What is this?', images: [IMG] }]),
      renderPrompt(spec, [{ role: 'user', text: 'Décris l’image 😀 en détail.\nMerci', images: [IMG] }], { answerPrefix: 'Sure' }),
      renderPrompt({ ...spec, promptFormat: 'vicuna_v1' }, [{ role: 'user', text: '  spaces  and\n\nnewlines ', images: [IMG] }]),
    ];
    for (const prompt of prompts) {
      const ref = Array.from((await refProcessor(makeImage(336, 336), prompt)).input_ids.data, Number);
      const { ids, imageSpans } = buildPromptIds(tok, spec, prompt, [577]);
      assert.deepEqual(ids, ref, prompt);
      assert.equal(imageSpans.length, 1);
      assert.equal(ids.filter((i) => i === 32000).length, 577);
      assert.ok(ids.slice(imageSpans[0].start, imageSpans[0].start + 577).every((i) => i === 32000));
      assert.equal(ids[0], 1, 'BOS first');
    }
  });

  test('576 rows per image, two images: each image token expands in order, ids equal transformers.js tokenizing the expanded text', () => {
    const prompt = renderPrompt(spec, [{ role: 'user', text: 'Compare.', images: [IMG, IMG] }]);
    const { ids, imageSpans } = buildPromptIds(tok, spec, prompt, [576, 10]);
    // transformers.js's processor only expands the first "<image>" (String.replace), so expand by hand for it.
    const [head, between, tail] = prompt.split('<image>');
    const expanded = head + '<image>'.repeat(576) + between + '<image>'.repeat(10) + tail;
    assert.equal(expanded.split('<image>').length - 1, 586);
    assert.deepEqual(ids, refTok.encode(expanded));
    assert.equal(imageSpans[0].length, 576);
    assert.equal(imageSpans[1].length, 10);
    assert.ok(imageSpans[1].start > imageSpans[0].start + 576, 'the "\\n" token sits between the two runs');
    for (const sp of imageSpans) assert.ok(ids.slice(sp.start, sp.start + sp.length).every((i) => i === spec.imageTokenId));
    assert.equal(ids.filter((i) => i === spec.imageTokenId).length, 586);
  });

  test('adjacent images split by the counts', () => {
    const { ids, imageSpans } = buildPromptIds(tok, spec, 'USER: <image><image>\nHi', [3, 4]);
    assert.deepEqual(imageSpans.map((s) => s.length), [3, 4]);
    assert.equal(imageSpans[1].start, imageSpans[0].start + 3);
    assert.equal(ids.filter((i) => i === 32000).length, 7);
  });

  test('image placeholder count must equal the image count', () => {
    const prompt = renderPrompt(spec, [{ role: 'user', text: 'Q', images: [IMG] }]);
    assert.throws(() => buildPromptIds(tok, spec, prompt, []), (e: unknown) => e instanceof EngineError && /1 <image> placeholder\(s\) for 0 image/.test(e.message));
    assert.throws(() => buildPromptIds(tok, spec, prompt, [576, 576]), /1 <image> placeholder\(s\) for 2 image/);
  });

  test('a template that prints bos_token does not get a second BOS', () => {
    const { ids } = buildPromptIds(tok, spec, '<s>USER: <image>\nHi ASSISTANT:', [2]);
    assert.equal(ids[0], 1);
    assert.notEqual(ids[1], 1);
    assert.deepEqual(ids, tok.encode('USER: <image><image>\nHi ASSISTANT:'));
  });
});
