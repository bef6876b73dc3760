// Tokenizer over @huggingface/tokenizers (the same library and the same (tokenizer.json, tokenizer_config.json)
// pair transformers.js builds its tokenizers from, so our ids match its ids), plus a streaming detokenizer.

import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import type { ModelSpec } from './modelFolder';

export interface EncodeOptions {
  /** add the post-processor's special tokens (BOS for Llama); default true, as in transformers */
  addSpecialTokens?: boolean;
}
export interface DecodeOptions {
  skipSpecialTokens?: boolean;
}

export interface Tokenizer {
  encode(text: string, opts?: EncodeOptions): number[];
  /** `[]` decodes to '' (the underlying library throws on an empty list) */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  tokenToId(token: string): number | undefined;
  idToToken(id: number): string | undefined;
  isSpecial(id: number): boolean;
  readonly specialIds: ReadonlySet<number>;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  readonly unkTokenId?: number;
  /** highest token id + 1 */
  readonly vocabSize: number;
}

export type TokenizerSource = Pick<ModelSpec, 'tokenizerJson' | 'tokenizerConfig'>;

export function loadTokenizer(source: TokenizerSource): Tokenizer {
  return new HfBackedTokenizer(source.tokenizerJson, source.tokenizerConfig);
}

class HfBackedTokenizer implements Tokenizer {
  private readonly hf: HfTokenizer;
  readonly specialIds: ReadonlySet<number>;
  readonly bosTokenId?: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  readonly unkTokenId?: number;
  readonly vocabSize: number;

  constructor(tokenizerJson: Record<string, unknown>, tokenizerConfig: Record<string, unknown>) {
    // The library insists on every top-level key being present (null allowed); Hub files sometimes omit some.
    const json = { normalizer: null, pre_tokenizer: null, post_processor: null, decoder: null, added_tokens: [], ...tokenizerJson };
    this.hf = new HfTokenizer(json, tokenizerConfig);
    const special = new Set<number>();
    for (const [id, t] of this.hf.get_added_tokens_decoder()) if (t.special) special.add(id);
    for (const t of (tokenizerConfig.additional_special_tokens as unknown[] | undefined) ?? []) {
      const id = this.hf.token_to_id(tokenContent(t) ?? '');
      if (id !== undefined) special.add(id);
    }
    this.specialIds = special;
    const idOf = (key: string) => {
      const t = tokenContent(tokenizerConfig[key]);
      return t === undefined ? undefined : this.hf.token_to_id(t);
    };
    this.bosTokenId = idOf('bos_token');
    this.eosTokenId = idOf('eos_token');
    this.padTokenId = idOf('pad_token');
    this.unkTokenId = idOf('unk_token');
    let maxId = -1;
    for (const id of this.hf.get_vocab(true).values()) if (id > maxId) maxId = id;
    this.vocabSize = maxId + 1;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.hf.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    if (ids.length === 0) return '';
    // clean_up_tokenization_spaces is left to tokenizer_config.json, as transformers.js does.
    return this.hf.decode([...ids], { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  tokenToId(token: string): number | undefined {
    return this.hf.token_to_id(token);
  }
  idToToken(id: number): string | undefined {
    return this.hf.id_to_token(id);
  }
  isSpecial(id: number): boolean {
    return this.specialIds.has(id);
  }
}

function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object' && typeof (v as { content?: unknown }).content === 'string') return (v as { content: string }).content;
  return undefined;
}

const REPLACEMENT_CHAR = '\uFFFD';

/**
 * Turns generated ids, fed one at a time, into text deltas. Decoding single tokens is wrong in two ways:
 * SentencePiece decoders strip the leading space of whatever they decode ('▁world' alone is "world"), and a
 * character split over byte-fallback tokens (<0xE2><0x9C><0x93>) decodes to U+FFFD until its last byte arrives.
 * So each step decodes a short window of earlier tokens, [prefixOffset, end), and emits only what the window
 * adds beyond its already-emitted head [prefixOffset, readOffset). A window whose text ends in U+FFFD is an
 * unfinished character: nothing is emitted and the offsets stay, so the bytes are re-decoded with the next id.
 * Special tokens (EOS, image tokens) are skipped. `flush()` ends the stream and releases what is held back;
 * the concatenation of all deltas then equals `tokenizer.decode(ids, { skipSpecialTokens: true })`.
 */
export class TextStreamer {
  private readonly ids: number[] = [];
  private prefixOffset = 0;
  private readOffset = 0;
  private emitted = '';

  constructor(private readonly tokenizer: Tokenizer) {}

  /**
   * A streamer whose output continues `prefix` (a forced answer start): the prefix's ids are fed first and
   * their text is not emitted, so the first generated token decodes as a continuation (SentencePiece drops
   * the leading space of a stream's first token: "of" then "▁a" must give "of a", not "ofa").
   */
  static continuing(tokenizer: Tokenizer, prefix: string | undefined): TextStreamer {
    const streamer = new TextStreamer(tokenizer);
    if (prefix) for (const id of tokenizer.encode(prefix, { addSpecialTokens: false })) streamer.push(id);
    return streamer;
  }

  /** Adds one generated id; returns the text it completes ('' while a character is unfinished). */
  push(id: number): string {
    this.ids.push(id);
    const opts = { skipSpecialTokens: true };
    const prefixText = this.tokenizer.decode(this.ids.slice(this.prefixOffset, this.readOffset), opts);
    const newText = this.tokenizer.decode(this.ids.slice(this.prefixOffset), opts);
    if (newText.length <= prefixText.length || newText.endsWith(REPLACEMENT_CHAR) || !newText.startsWith(prefixText)) return '';
    const delta = newText.slice(prefixText.length);
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    this.emitted += delta;
    return delta;
  }

  /**
   * Ends the stream: returns the rest of the full decode (held-back bytes that never completed, as U+FFFD,
   * like the full decode shows them). Decodes everything once, so it is exact even where a window was not.
   */
  flush(): string {
    const full = this.tokenizer.decode(this.ids, { skipSpecialTokens: true });
    // The full decode extends what was emitted except where a tokenizer's clean-up rewrote text across a window
    // boundary (" ." -> "."); emitted text cannot be taken back, so then only the unseen tail is sent.
    const rest = full.startsWith(this.emitted) ? full.slice(this.emitted.length) : full.slice(Math.min(this.emitted.length, full.length));
    this.emitted += rest;
    this.prefixOffset = this.readOffset = this.ids.length;
    return rest;
  }

  /** Everything emitted so far. */
  get text(): string {
    return this.emitted;
  }
  get tokenIds(): readonly number[] {
    return this.ids;
  }
}
