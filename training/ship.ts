// `npx tsx training/ship.ts --work DIR [--train-seconds N]`: the last step of training/recipe.sh. Copies the
// converted model (DIR/model) into models/builtin/ (fp32 and q4 graphs; the embedding table only once, in
// fp32: q4 leaves a gathered table in fp32 anyway and the engine picks the fp32 file for every variant),
// writes the PyTorch-vs-engine parity record the tests check (test/data/builtin/parity.jsonl) and the
// model card (models/builtin/README.md: data, recipe, seed, metrics, commands, sha256 of every file).

import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { PRESET_PROMPTS } from '../src/captioning/jobs';
import { loadModel } from '../src/engine';
import { scoreCaption } from './captions';
import { largestObject } from './data/context';
import { readSampleContext } from './data/samples';

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'models', 'builtin');
const PARITY = path.join(ROOT, 'test', 'data', 'builtin', 'parity.jsonl');
/** what the shipped folder leaves out of the converter's output */
const SKIP = new Set(['.llava-convert.json', 'embed_tokens_q4.onnx']);

type Row = { group: string; n: number; correct: number; accuracy: number };
interface Report {
  scienceqa?: { rows: Row[]; unparsed: number };
  short?: { rows: Row[] };
  grounding?: { n: number; hits: number; rate: number; meanIou: number; unparsed: number };
}

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const readJsonl = (file: string) => readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

function copyModel(from: string): void {
  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(path.join(OUT, 'onnx'), { recursive: true });
  for (const rel of [...readdirSync(from).filter((f) => f !== 'onnx'), ...readdirSync(path.join(from, 'onnx')).map((f) => `onnx/${f}`)]) {
    if (SKIP.has(path.basename(rel)) || statSync(path.join(from, rel)).isDirectory()) continue;
    copyFileSync(path.join(from, rel), path.join(OUT, rel));
  }
}

/**
 * The shipped chat template renders the latest question alone, with the conversation's images after it
 * (training/config/chat_template.single-turn.json): the model answers follow-ups as well as first questions only
 * that way (held-out short answers 78 % either way, against 43 % as a follow-up under the training template, which
 * renders the whole conversation; its boxes 54 % against none). A single-question prompt renders the same under both.
 */
function shipSingleTurnTemplate(): void {
  copyFileSync(path.join(ROOT, 'training', 'config', 'chat_template.single-turn.json'), path.join(OUT, 'chat_template.json'));
}

/**
 * The variant the extension runs unless a user pins one, declared where transformers.js reads it too
 * (config.json's `transformers.js_config.dtype`; src/core/variants.ts): fp32. At 2.6 M parameters the fp32 graphs
 * load and answer as fast as q4 to a user's eye, and answer better (the card's two tables; training/README.md).
 */
function declareDefaultVariant(): void {
  const file = path.join(OUT, 'config.json');
  const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  config['transformers.js_config'] = { ...((config['transformers.js_config'] as object) ?? {}), dtype: 'fp32' };
  writeFileSync(file, JSON.stringify(config, null, 2) + '\n');
}

/** Engine and PyTorch greedy tokens, side by side; the test re-runs the engine and compares with `torch`. */
function writeParity(work: string): { n: number; same: number } {
  const engine = readJsonl(path.join(work, 'parity-engine.jsonl'));
  const torch = readJsonl(path.join(work, 'parity-torch.jsonl'));
  if (engine.length !== torch.length) throw new Error(`parity: ${engine.length} engine answers, ${torch.length} PyTorch answers`);
  const images = (JSON.parse(readFileSync(path.join(work, 'heldout-pack', 'images.json'), 'utf8')) as { images: { file: string }[] }).images;
  // PyTorch's list keeps the EOS that ended its answer; the engine stops there and reports the tokens before it
  const eos = (JSON.parse(readFileSync(path.join(work, 'model', 'generation_config.json'), 'utf8')) as { eos_token_id: number }).eos_token_id;
  let same = 0;
  const lines = engine.map((e, i) => {
    const t = torch[i].tokens as number[];
    const answer = t.at(-1) === eos ? t.slice(0, -1) : t;
    if (JSON.stringify(answer) === JSON.stringify(e.tokens)) same++;
    return JSON.stringify({ image: images[e.img as number].file, text: e.question, torch: t, engine: e.tokens });
  });
  mkdirSync(path.dirname(PARITY), { recursive: true });
  writeFileSync(PARITY, lines.join('\n') + '\n');
  return { n: engine.length, same };
}

const pct = (x: number) => `${(x * (x <= 1 ? 100 : 1)).toFixed(1)} %`;

function table(rows: Row[]): string {
  return ['| group | n | correct | accuracy |', '| --- | --- | --- | --- |', ...rows.map((r) => `| ${r.group} | ${r.n} | ${r.correct} | ${r.accuracy.toFixed(1)} % |`)].join('\n');
}

function metrics(label: string, r: Report): string {
  const g = r.grounding;
  return [
    `#### ${label}`,
    '',
    `Multiple choice (ScienceQA layout, ${r.scienceqa?.unparsed ?? 0} answers named no option):`,
    '',
    table(r.scienceqa?.rows ?? []),
    '',
    'Short answer (normalised exact match):',
    '',
    table(r.short?.rows ?? []),
    '',
    g ? `Grounding: IoU >= 0.5 on ${g.hits} of ${g.n} referring queries (${pct(g.rate)}), mean IoU ${g.meanIou.toFixed(3)}, ${g.unparsed} answers held no box.` : '',
  ].join('\n');
}

/** The first line of training/captions.ts's report on the model (the recipe writes WORK/captions.txt). */
function captionLine(work: string): string {
  const file = path.join(work, 'captions.txt');
  if (!existsSync(file)) throw new Error(`${file} is missing (the recipe writes it: npx tsx training/captions.ts --model WORK/model)`);
  return readFileSync(file, 'utf8').split('\n')[0].trim();
}

/**
 * What the shipped model's batch captions of the two demo images say and get right, read against their records
 * (media/samples/NAME.json) the way training/captions.ts reads held-out captions: the count word, the largest
 * shape (class and colour) and how many of the objects a "colour shape" phrase names.
 */
async function demoCaptions(): Promise<string> {
  const samples = path.join(ROOT, 'media', 'samples');
  const model = await loadModel(OUT, { provider: 'cpu', variant: 'fp32' });
  const lines: string[] = [];
  try {
    for (const image of ['shapes.png', 'shapes-tall.jpg']) {
      const { objects } = readSampleContext(image);
      let caption = '';
      for await (const ev of model.generate([{ role: 'user', text: PRESET_PROMPTS.short, images: [{ path: path.join(samples, image) }] }], { maxNewTokens: 48 })) {
        if (ev.type === 'done') caption = ev.text.trim();
      }
      const s = scoreCaption(caption, objects);
      const big = largestObject(objects);
      const said = [
        s.count === undefined ? 'no count' : `the count ${s.count ? 'right' : 'wrong'} (${objects.length})`,
        s.largest === undefined ? 'no largest shape' : `the largest ${s.largest ? 'right' : 'wrong'} (a ${big.colour} ${big.class})`,
        `${s.right} of ${objects.length} objects named right (${objects.map((o) => `${o.colour} ${o.class}`).join(', ')})`,
      ];
      lines.push(`- \`${image}\`: "${caption}": ${said.join('; ')}.`);
    }
  } finally {
    await model.dispose();
  }
  return lines.join('\n');
}

/** Issue 11's targets against what the model measured, one row each. */
function shortfall(r: Report): string {
  const short = new Map((r.short?.rows ?? []).map((row) => [row.group, row.accuracy]));
  const mc = r.scienceqa?.rows.find((row) => row.group === 'average')?.accuracy;
  const rows: [string, number, number | undefined][] = [
    ['colour', 95, short.get('category colour')],
    ['shape', 95, short.get('category shape')],
    ['existence', 95, short.get('category existence')],
    ['count', 90, short.get('category count')],
    ['position', 85, short.get('category position')],
    ['multiple choice', 90, mc],
    ['grounding, IoU >= 0.5', 85, r.grounding?.rate], // the report's rate is a percentage already
  ];
  return rows.map(([name, target, got]) => `| ${name} | ${target} % | ${got === undefined ? '-' : `${got.toFixed(1)} %`} |`).join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { work: { type: 'string' }, 'train-seconds': { type: 'string' } } });
  if (!values.work) throw new Error('usage: npx tsx training/ship.ts --work DIR [--train-seconds N]');
  const work = values.work;
  copyModel(path.join(work, 'model'));
  declareDefaultVariant();
  shipSingleTurnTemplate();
  const parity = writeParity(work);
  const trainLog = existsSync(path.join(work, 'pack', 'train-log.json')) ? JSON.parse(readFileSync(path.join(work, 'pack', 'train-log.json'), 'utf8')) : {};
  const q4 = JSON.parse(readFileSync(path.join(work, 'eval-q4.json'), 'utf8')) as Report;
  const fp32 = JSON.parse(readFileSync(path.join(work, 'eval-fp32.json'), 'utf8')) as Report;
  const config = JSON.parse(readFileSync(path.join(OUT, 'config.json'), 'utf8'));
  const v = config.vision_config;
  const t = config.text_config;

  const files = [...readdirSync(OUT).filter((f) => f !== 'onnx' && f !== 'README.md'), ...readdirSync(path.join(OUT, 'onnx')).map((f) => `onnx/${f}`)].sort();
  const total = files.reduce((n, f) => n + statSync(path.join(OUT, f)).size, 0);
  const minutes = (s: number) => `${(s / 60).toFixed(1)} min`;
  const demo = await demoCaptions();
  const card = `# Built-in demo model (shapes)

A LLaVA-1.5-architecture model of ${(total / 1e6).toFixed(1)} MB (fp32 and q4 graphs together) that answers questions about
simple images of coloured shapes: which shapes, colours, how many, where, and the box of a named shape. It is
the model the extension and \`npm run demo\` use without any download, in fp32 unless a user pins a variant
(\`config.json\` declares it as \`transformers.js_config.dtype\`, which transformers.js reads too): at this size the
fp32 graphs cost nothing a user notices and answer better than q4 (the two tables below). **It answers each
question on its own**: its chat template renders only the latest question, with the image, because it learned
first questions (asked as a follow-up after the whole conversation, it answered 43 % of held-out short questions
right against 78 %, and drew no box); so \"and the square?\" does not know what came before. **It knows nothing else**: a photo, a
screenshot or a question outside its domain gets a confident answer about shapes.

Made by this repository, the paper's way at toy scale (training/README.md): instruction data generated from
captions and boxes only, a CLIP-style vision tower and a LLaMA-style decoder trained from scratch (no
pretrained weights exist on this machine), then feature alignment and visual instruction tuning; weights
saved with llava-hf names and converted by \`llava convert\` (not exported from PyTorch). The q4 graphs pick each
block's scale by least squared error (\`--q4-scales search\`), which keeps about 40 % of what the Hub's absmax
scales lose against fp32 here, over blocks of 16 weights (\`--q4-block 16\`; the Hub's files use 32, which here is a
whole row of the decoder's 32-wide layers): boxes at IoU >= 0.5 went from 30 to 44 % of the committed held-out
phrases with it (fp32 47 %), from 27 to 31 % of 1,466 phrases on 800 other scenes (fp32 33 %).
The \`lm_head\`, mostly zero rows, stays sparse f32 in the q4 decoder (training/README.md).

## Architecture
- Vision: CLIP ViT, ${v.image_size} px input, patch ${v.patch_size} (${(v.image_size / v.patch_size) ** 2} image tokens), hidden ${v.hidden_size}, ${v.num_hidden_layers} layers (features from layer ${v.num_hidden_layers - 1}, \`vision_feature_layer\` -2, class token dropped), quick_gelu.
- Projector: 2-layer MLP with GELU (${v.hidden_size} -> ${t.hidden_size} -> ${t.hidden_size}).
- Language model: LLaMA, hidden ${t.hidden_size}, ${t.num_hidden_layers} layers, ${t.num_attention_heads} heads${t.head_dim ? ` of ${t.head_dim}` : ''}, intermediate ${t.intermediate_size}, RoPE, RMSNorm; vocabulary 32064 (LLaMA-2 tokenizer, \`<image>\` = 32000, \`<pad>\` = 32001 as llava-hf); llava-1.5-hf's chat template (\`USER: <image>\\n... ASSISTANT:\`).
- Images are padded to a square with the mean colour (\`image_aspect_ratio: pad\`), so boxes are in LLaVA-1.5's frame.
- Only the ${trainLog.domainTokens ?? 'few hundred'} token ids the training data contains have non-zero \`lm_head\` rows (see "Recipe").

## Data
6,000 generated scenes (\`npx tsx training/data/generate.ts --count 6000 --seed 0\`: 1-6 shapes of 5 classes and 8
colours, 200-1200 px, aspect 1:2 to 2:1, PNG and JPEG, 15 % diagrams of boxes and arrows) with 6,000 brief-caption
samples (stage 1), 41,995 instruction samples (stage 2: the paper's conversation, detailed description and
complex reasoning, plus LLaVA-1.5's short answer, multiple choice, grounding and region description) and 6,000
lead captions (\`captions_lead.json\`, stage 2's last phase).

## Recipe (\`bash training/recipe.sh\`, seed 0; seed 1 in the last two phases)
- Stage 0: the vision tower trained contrastively against a throw-away caption encoder (InfoNCE both ways; 300
  steps of 64 images) and, **departing from the paper**, with a dense auxiliary loss from the same boxes the
  instruction data comes from: each patch under an object predicts the object's colour, class, box, size class and
  which third of the image (across and down) holds its centre; then 2,000 steps of the dense loss alone, each image
  moved by up to 14 px each way (the labels recomputed for the moved view), and 2,000 more of 64 images from that
  tower with the learning rate started again (a linear probe of its patches tells an object's class apart 92 % of
  the time against 85 % without them; small objects 81 against 71 %). The tower is 128 wide: at 64 its
  features told a shape's class apart 75 % of the time and the decoder's shape answers stayed near 46 %. The
  position embedding starts as 2-D sine-cosine waves. CLIP's features come from 400 M image-text pairs, ours from
  6,000 images; with contrastive training alone the decoder answered at chance (training/README.md). The decoder
  is trained as a language model on the data's text (400 steps of 32 sequences).
- Stage 1 (feature alignment): vision tower and decoder frozen, the projector learns on brief captions (300 steps).
- Stage 2 (visual instruction tuning): vision tower frozen as in the paper; projector and decoder learn, first on
  single-turn questions with the topics joining one group at a time (colour; + shape; + existence and count;
  + position and grounding: 1,500 / 2,500 / 2,000 / 2,500 steps of 48), then every single-turn kind (1,500 steps),
  then the full LLaVA-1.5-style mix (1,000 steps of 4 images with all their samples plus 24 single-turn questions);
  then grounding: 3,000 steps of grounding questions alone, then 400 steps of count questions alone and 400 of lead
  captions alone (one per image: how many shapes and the largest by box area, the one caption the picture
  decides), and 1,500 steps of every single-turn kind with
  grounding questions drawn 5 times as often as the others (the mixed phases alone left every box at the mean);
  last, 1,000 steps of the full mix again, its 24 single-turn questions drawn with the same weights (after
  single-turn phases alone the model answered "Describe the image" with "Yes"), with 16 lead captions drawn into
  every step too (stage 1's brief captions each name a random object; taught those, the model captioned 12 % of the
  named shapes right). The last two phases draw their samples with seed 1: over 800 held-out scenes its answers
  scored higher than seed 0's (fp32 average 89.4 against 88.2 %; boxes 68.8 against 70.5 %), and seed 0's captions
  name the right shape less often (25 against 32 % of held-out objects); the seed alone moves these phases'
  held-out numbers by up to 5 points (training/README.md, nineteenth to twenty-third sessions).
- In every stage-2 step, **departing from the paper** again, a thrown-away linear head on the decoder's second layer
  names the image patches of the objects each single-turn question is about (the data's \`about\` field, from the
  same boxes; binary cross-entropy beside the answer loss): with the better tower and without the head, the opening
  phases answered shape 65 % of 800 held-out scenes, with it 90 % (existence 58 against 94 % after the next phase).
  The head starts at zero in each command, so that it sends no gradient into the decoder before it has learned.
  Neither the head nor the field is in the shipped model.
- Loss on answer tokens only, besides that head. The softmax over the 32064-token vocabulary is computed exactly but cheaply by
  keeping the \`lm_head\` rows of tokens the data never shows at zero (each then contributes exp(0)).
- Time from generating the data to the trained weights: ${values['train-seconds'] ? minutes(Number(values['train-seconds'])) : 'see train-log'} on a shared 2-core machine (PyTorch ${trainLog.torch ?? '1.13'} with OpenBLAS${trainLog.seconds ? `; stages 1-2 ${minutes(trainLog.seconds)} in train.py` : ''}).

## What it gets wrong
It is a demo of the pipeline, not yet the model issue 11 asks for. Against that issue's targets (q4, held-out set):

| | target | measured |
| --- | --- | --- |
${shortfall(q4)}

Short answers ("Answer the question using a single word or phrase.") are its best form. Its captions follow one
form, how many shapes and the largest of them ("Three shapes on a plain cream background, and the largest is a
black square."), and the background it names is a guess; free-form descriptions are not yet about the image.
Captions of the held-out shape scenes (\`npx tsx training/captions.ts --model models/builtin\`, fp32): ${captionLine(work)}. Its boxes overlap the named shape
by half or more (IoU >= 0.5) for ${pct(fp32.grounding?.rate ?? 0)} of referring phrases in fp32, ${pct(q4.grounding?.rate ?? 0)} in q4; the rest land near it or on another shape.
Its batch captions of the demo images (\`media/samples/\`, fp32; \`test/unit/builtinModel.test.ts\` asks these
images for the colour and the shape of every object and how many there are, and holds the captions' right parts):
${demo}

## Metrics on the held-out set (test/data/heldout: 96 shape scenes + 16 diagrams, never trained on)
\`node dist/cli.js eval --model models/builtin --data test/data/heldout --provider cpu --variant fp32\` (and \`--variant q4\`)

${metrics('fp32 (what the extension runs: its config declares it)', fp32)}

${metrics('q4 (`--variant q4`; the targets above are its)', q4)}

PyTorch and the engine (fp32) give the same greedy tokens on ${parity.same} of ${parity.n} held-out questions
(test/data/builtin/parity.jsonl; \`npm test\` re-checks the engine against it).

## Files
| file | bytes | sha256 |
| --- | --- | --- |
${files.map((f) => `| ${f} | ${statSync(path.join(OUT, f)).size} | ${sha256(path.join(OUT, f))} |`).join('\n')}

## Licence
MIT, like this repository. The tokenizer files are LLaMA 2's (Llama 2 Community License), as in llava-hf/llava-1.5-7b-hf.
`;
  writeFileSync(path.join(OUT, 'README.md'), card);
  process.stdout.write(`models/builtin: ${files.length} files, ${(total / 1e6).toFixed(2)} MB; parity ${parity.same}/${parity.n}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
