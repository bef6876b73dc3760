// `npx tsx training/pack.ts --data DIR --out DIR`: turns a generated training set (training/data) into what
// the PyTorch trainer reads, using the engine's own code for everything the shipped model will later see:
//
// - `ckpt/`: the llava-hf folder the trainer writes its safetensors into: training/config/* (our sizes) plus
//   llava-1.5-7b-hf's tokenizer files and chat template (test/data/real-configs), so the converter and the
//   engine read it like any llava-hf checkpoint.
// - `pixels.u8`: [N, S, S, 3] u8, each image padded to a square with the mean colour and resized exactly as
//   the engine's preprocessing does (PIL arithmetic); the trainer only normalises.
// - `images.json`: the image files in that order, with the dataset's captions for the contrastive stage;
//   `contexts.jsonl`: their boxes, for stage 0's dense auxiliary loss.
// - `stage1.jsonl` / `stage2.jsonl` / `stage2a.jsonl`: one sample per line, `{img, ids, spans}`: prompt ids as the engine
//   builds them (chat template, LLaMA-2 tokenizer, BOS; the single `<image>` id is widened to the image's
//   feature rows by the trainer), and `spans` [[start, end], ...] of the answer tokens the loss is on (the
//   last answer ends with EOS, which the engine stops at), and `kind`, the sample's type (the id's last part:
//   conv, detail, complex, short, mc, ground, region; caption), for stage 2's curriculum; stage2a.jsonl's
//   single-turn samples also carry their question's `topic` (colour, shape, count, existence, position, ...;
//   ground and region for those formats) and, where the data gives it, `about`: the context objects the question
//   is about (indices); `stage2c.jsonl`: the lead captions (captions_lead.json: one per image,
//   decided by the picture; a shape scene's with `about`, its largest object, the one it names), which
//   train.py --captions2-from stage2c draws into the last phase (and --about-captions asks the about-rows head on).
//
// With --images-only only pixels.u8 and images.json are written (held-out parity checks); with --samples-only
// only the stage*.jsonl files (same data, a changed template or sample split: the pixels stay valid). A whole
// pack runs the two halves at once, the samples in a second process (the same bytes, in about half the time).

import { copyFileSync, createWriteStream, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { fork, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { readModelFolder, type ModelSpec } from '../src/engine/modelFolder';
import { decodeImage, geometricPreprocess } from '../src/engine/preprocess';
import { buildPromptIds, renderPrompt } from '../src/engine/prompt';
import { loadTokenizer, type Tokenizer } from '../src/engine/tokenizer';
import type { ChatTurn } from '../src/core';

const ROOT = path.resolve(__dirname, '..');
const REAL = path.join(ROOT, 'test/data/real-configs/llava-1.5-7b-hf');
const TOKENIZER_FILES = ['tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json', 'chat_template.json'];

interface Sample {
  id: string;
  image: string;
  conversations: { from: 'human' | 'gpt'; value: string }[];
  /** per question, the context objects it is about (training/data/llavaFormat.ts) */
  about?: number[][];
}

/** The llava-hf folder the trainer fills: our config plus the real LLaMA-2 tokenizer and template. */
export function writeCheckpointSkeleton(dir: string): void {
  mkdirSync(dir, { recursive: true });
  const own = path.join(ROOT, 'training/config');
  for (const f of ['config.json', 'preprocessor_config.json', 'processor_config.json', 'generation_config.json']) copyFileSync(path.join(own, f), path.join(dir, f));
  for (const f of TOKENIZER_FILES) copyFileSync(path.join(REAL, f), path.join(dir, f));
  // our own template: llava-1.5's vicuna_v1 turns, with each question before its image (LLaVA-Instruct puts
  // <image> on either side of the first question). Image rows can then attend to the question, so finding
  // "the circle" among 64 rows is one hop; with the image first the answer must first fetch the question and
  // then the image, which this small decoder did not learn (training/README.md: 81 % against 37-49 %).
  copyFileSync(path.join(ROOT, 'training/config/chat_template.json'), path.join(dir, 'chat_template.json'));
  // the same tokenizer, without the indentation (1.8 MB instead of 3.9 MB: the shipped folder has a size budget)
  writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(JSON.parse(gunzipSync(readFileSync(path.join(REAL, 'tokenizer.json.gz'))).toString('utf8'))));
}

/**
 * The engine's view of the checkpoint (preprocessing, tokenizer, template): its folder reader wants the
 * ONNX files a checkpoint does not have yet, so it reads a copy with empty stand-ins that nothing opens.
 */
async function specOf(ckpt: string, scratch: string): Promise<ModelSpec> {
  mkdirSync(path.join(scratch, 'onnx'), { recursive: true });
  for (const f of readdirSync(ckpt)) copyFileSync(path.join(ckpt, f), path.join(scratch, f));
  for (const s of ['vision_encoder', 'embed_tokens', 'decoder_model_merged']) writeFileSync(path.join(scratch, 'onnx', `${s}.onnx`), '');
  return readModelFolder(scratch);
}

/** LLaVA-Instruct turns -> the engine's ChatTurns (the `<image>\n` opener becomes the turn's image). */
function toTurns(sample: Sample): { user: ChatTurn; answer: string }[] {
  const pairs: { user: ChatTurn; answer: string }[] = [];
  for (let i = 0; i + 1 < sample.conversations.length; i += 2) {
    const h = sample.conversations[i];
    const g = sample.conversations[i + 1];
    if (h.from !== 'human' || g.from !== 'gpt') throw new Error(`${sample.id}: turns do not alternate human/gpt`);
    const hasImage = h.value.startsWith('<image>\n');
    const text = hasImage ? h.value.slice('<image>\n'.length) : h.value;
    pairs.push({ user: { role: 'user', text, ...(hasImage ? { images: [{ path: sample.image }] } : {}) }, answer: g.value });
  }
  return pairs;
}

/** A sample's type: the last part of its id (conv, detail, complex, short, mc, ground, region; caption). */
const kindOf = (s: Sample) => s.id.slice(s.id.lastIndexOf('-') + 1);

/** The LLaVA-1.5 formats whose turns are independent questions about the image (vqa, mcq: vqa.json, mcq.json, kept out of the mix). */
const SINGLE_TURN_KINDS = new Set(['short', 'mc', 'ground', 'region', 'vqa', 'mcq']);

/**
 * Each question-answer turn of a sample as its own one-turn sample, the image opening it: what stage 2's
 * opening part trains on (the question then sits right before the image rows in our template, the position a
 * first question has; a follow-up comes after the image, which this small decoder learns far later).
 */
function singleTurns(s: Sample): Sample[] {
  const out: Sample[] = [];
  for (let i = 0; i + 1 < s.conversations.length; i += 2) {
    const q = s.conversations[i].value.replace(/^<image>\n/, '');
    out.push({ ...s, conversations: [{ from: 'human', value: `<image>\n${q}` }, s.conversations[i + 1]], ...(s.about ? { about: [s.about[i / 2]] } : {}) });
  }
  return out;
}

/** What a short-answer question asks about, from its template's opening (training/data/facts.ts) or one of its
 * other wordings (training/data/wordings.ts). */
export function topicOf(question: string): string {
  const q = question.replace(/^<image>\n/, '');
  if (/\barrows?\b/.test(q) || /^Which box /.test(q)) return 'arrow';
  if (/^(What colou?r is |What is the colou?r of |Which colou?r is )/.test(q)) return 'colour';
  if (/^(What shape is |What kind of shape is |Which shape is |What is the shape of )/.test(q)) return 'shape';
  if (/^(How many |Count the )/.test(q)) return 'count';
  if (/^(Is there |Does the image contain |Can you see )/.test(q)) return 'existence';
  if (/^(Where in the image|Where is |In which part of the image|(Is|Is it true that|Would you say) the .* ((on the left|in the top|at the top)( side| half)? or|to the left of|to the right of|above|below))/.test(q)) return 'position';
  return 'other';
}

const startsWith = (a: number[], b: number[]) => b.length <= a.length && b.every((v, i) => a[i] === v);

/**
 * Prompt ids of a whole conversation and the spans of its answers, as the engine would see each turn:
 * turn k's prompt is the template's rendering of turns 1..k with the generation prompt, and its answer is
 * what follows when the answer text is appended after a space ("ASSISTANT: Yes"). Null when the
 * tokenization of a later turn does not extend the earlier one (never seen; counted).
 */
export function tokenizeSample(spec: ModelSpec, tok: Tokenizer, sample: Sample, eos: number): { ids: number[]; spans: [number, number][] } | null {
  const pairs = toTurns(sample);
  const turns: ChatTurn[] = [];
  const spans: [number, number][] = [];
  let ids: number[] = [];
  for (const [k, { user, answer }] of pairs.entries()) {
    turns.push(user);
    const prompt = renderPrompt(spec, turns, { addGenerationPrompt: true });
    const promptIds = buildPromptIds(tok, spec, prompt, [1]).ids;
    const answered = buildPromptIds(tok, spec, `${prompt} ${answer}`, [1]).ids;
    if (!startsWith(promptIds, ids) || !startsWith(answered, promptIds) || answered.length === promptIds.length) return null;
    ids = answered;
    spans.push([promptIds.length, answered.length]);
    turns.push({ role: 'assistant', text: answer });
    if (k === pairs.length - 1) {
      ids = [...ids, eos];
      spans[spans.length - 1][1] += 1;
    } else {
      // the next turn's prompt renders this answer as history ("ASSISTANT: Yes USER: ..."): it must keep these ids
      const history = buildPromptIds(tok, spec, renderPrompt(spec, [...turns, pairs[k + 1].user], { addGenerationPrompt: true }), [1]).ids;
      if (!startsWith(history, ids)) return null;
    }
  }
  return { ids, spans };
}

/** `pixels.u8` (each image as the engine preprocesses it), `images.json` (files and caption ids), `contexts.jsonl`. */
async function writeImages(out: string, dataDir: string, contextsFile: string, spec: ModelSpec, tok: Tokenizer): Promise<void> {
  const contexts = readContexts(contextsFile);
  const imageDir = imageDirOf(dataDir);
  const pixels = createWriteStream(path.join(out, 'pixels.u8'));
  const images: { file: string; captions: number[][] }[] = [];
  for (const [i, c] of contexts.entries()) {
    const file = existsSync(path.join(dataDir, c.image)) ? path.join(dataDir, c.image) : path.join(imageDir, c.image);
    const { image } = geometricPreprocess(await decodeImage({ path: file }), spec.preprocess);
    if (!pixels.write(image.data)) await new Promise<void>((r) => pixels.once('drain', () => r()));
    images.push({ file: c.image, captions: (c.captions ?? []).map((t) => tok.encode(t, { addSpecialTokens: true })) });
    if (i % 500 === 0) process.stderr.write(`${i}/${contexts.length} images\n`);
  }
  await new Promise<void>((r) => pixels.end(r));
  writeFileSync(path.join(out, 'images.json'), JSON.stringify({ size: spec.preprocess.width, images }));
  // the boxes, for stage 0's dense auxiliary loss (same order as pixels.u8)
  copyFileSync(contextsFile, path.join(out, 'contexts.jsonl'));
}

// a training set keeps images under images/; the held-out set's contexts name paths from its root
const imageDirOf = (dataDir: string) => (existsSync(path.join(dataDir, 'images')) ? path.join(dataDir, 'images') : dataDir);

const readContexts = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { image: string; captions?: string[] });

/** This script again with --samples-child added; `done` resolves when it exits with 0 (await it at once). */
function samplesProcess(args: string[]): { proc: ChildProcess; done: Promise<void> } {
  const proc = fork(__filename, [...args, '--samples-child'], { stdio: 'inherit' });
  const done = new Promise<void>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`pack: the samples process ended with ${signal ?? `code ${code}`}`))));
  });
  return { proc, done };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      data: { type: 'string' },
      out: { type: 'string' },
      'images-only': { type: 'boolean', default: false },
      'samples-only': { type: 'boolean', default: false },
      contexts: { type: 'string' },
      // internal: the samples half of a whole pack, run beside the images half by its parent, which wrote ckpt/
      'samples-child': { type: 'boolean', default: false },
    },
  });
  if (!values.data || !values.out) throw new Error('usage: npx tsx training/pack.ts --data DIR --out DIR [--images-only | --samples-only] [--contexts FILE]');
  const out = path.resolve(values.out);
  const ckpt = path.join(out, 'ckpt');
  const child = values['samples-child'];
  if (!child) writeCheckpointSkeleton(ckpt);
  const spec = await specOf(ckpt, path.join(out, child ? 'spec-probe-samples' : 'spec-probe'));
  const tok = loadTokenizer(spec);
  const eos = spec.generation.eosTokenIds[0];

  // images, in contexts.jsonl order
  const contextsFile = values.contexts ?? path.join(values.data, 'contexts.jsonl');
  const index = new Map(readContexts(contextsFile).map((c, i) => [c.image, i]));
  if (!values['samples-only'] && !child) {
    // a whole pack: the images (decode and resize, on this process's thread) and the samples (tokenising) are
    // independent, so the samples are written by a second process at the same time; either failing ends both
    const samples = values['images-only'] ? undefined : samplesProcess(process.argv.slice(2));
    try {
      await Promise.all([writeImages(out, values.data, contextsFile, spec, tok), samples?.done]);
    } catch (err) {
      samples?.proc.kill();
      throw err;
    }
    return;
  }
  const imageDir = imageDirOf(values.data);

  const mix = JSON.parse(readFileSync(path.join(values.data, 'llava_v1_5_mix.json'), 'utf8')) as Sample[];
  // vqa.json and mcq.json: many short-answer and multiple-choice questions per image, outside the mix (older sets lack them)
  const data = values.data;
  const extra = (name: string) => (existsSync(path.join(data, name)) ? (JSON.parse(readFileSync(path.join(data, name), 'utf8')) as Sample[]) : []);
  const vqa = [...extra('vqa.json'), ...extra('mcq.json')];
  const sets: [string, Sample[]][] = [
    ['stage1', JSON.parse(readFileSync(path.join(values.data, 'captions.json'), 'utf8')) as Sample[]],
    ['stage2', mix],
    ['stage2a', [...mix, ...vqa].filter((s) => SINGLE_TURN_KINDS.has(kindOf(s))).flatMap(singleTurns)],
    // the lead captions (train.py --captions2-from stage2c); older sets lack them
    ...(existsSync(path.join(data, 'captions_lead.json')) ? [['stage2c', extra('captions_lead.json')] as [string, Sample[]]] : []),
  ];
  for (const [stage, samples] of sets) {
    const lines: string[] = [];
    let dropped = 0;
    for (const s of samples) {
      const img = index.get(s.image);
      if (img === undefined) throw new Error(`${s.id}: image ${s.image} is not in ${contextsFile}`);
      const t = tokenizeSample(spec, tok, { ...s, image: path.join(imageDir, s.image) }, eos);
      if (!t) dropped++;
      else {
        const about = s.about ? { about: s.about[0] } : {};
        const single = stage === 'stage2a' ? { topic: ['ground', 'region'].includes(kindOf(s)) ? kindOf(s) : topicOf(s.conversations[0].value), ...about } : stage === 'stage2c' ? about : {};
        lines.push(JSON.stringify({ img, ids: t.ids, spans: t.spans, kind: kindOf(s), ...single }));
      }
    }
    writeFileSync(path.join(out, `${stage}.jsonl`), lines.join('\n') + '\n');
    process.stderr.write(`${stage}: ${lines.length} samples (${dropped} dropped: tokenization of a later turn changed an earlier one)\n`);
  }
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`${(err as Error).stack}\n`);
    process.exit(1);
  });
}
