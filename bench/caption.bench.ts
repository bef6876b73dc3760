// Batch captioning benchmark: images per minute for
//   batched       our runner, LlavaModel.generateBatch, N images per decoder run, prefetch overlapping
//   one-by-one    our runner, LlavaModel.generate per image (batch 1)
//   transformers.js  a plain loop: RawImage.read -> processor -> LlavaForConditionalGeneration.generate
// on the same folder of generated images, greedy, same new-token cap and thread count, CPU provider; then
// memory over a long run (RSS at start and end, in a fresh process). Whole pipeline timed: file decode,
// preprocessing, vision, prefill, decode, writing the manifest; each mode warms up first (untimed).
// Nothing here asserts on timings.
//
//   npx tsx bench/caption.bench.ts [--model bench-llava] [--images 24] [--new-tokens 16] [--batch 4,8]
//        [--threads 2] [--dtype fp32|q4] [--memory-images 500] [--memory-model NAME] [--modes batched,single,transformers.js]
// Table to stdout; JSON to bench/results/caption-<timestamp>.json.

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadModel } from '../src/engine/index';
import { expandImagePaths, PRESET_PROMPTS, runCaptionJob } from '../src/captioning/jobs';
import { modelCaptionBackend } from '../src/captioning/modelBackend';
import { ensureFixtures, fixtureDir, MODELS_DIR } from '../test/fixtures/index';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');

const { values } = parseArgs({
  options: {
    model: { type: 'string' },
    images: { type: 'string', default: '24' },
    'new-tokens': { type: 'string', default: '16' },
    batch: { type: 'string', default: '4,8' },
    threads: { type: 'string', default: '2' },
    dtype: { type: 'string', default: 'fp32' },
    'memory-images': { type: 'string', default: '500' },
    'memory-model': { type: 'string' },
    modes: { type: 'string', default: 'batched,single,transformers.js' },
    'memory-only': { type: 'string' }, // internal: run the memory phase in this (fresh) process, print JSON
  },
});
const threads = Number(values.threads);
const newTokens = Number(values['new-tokens']);
/** the same files for both engines: fp32, or q4 (the engine's default on a CPU) */
const DTYPE = values.dtype === 'q4' ? 'q4' : values.dtype === 'fp32' ? 'fp32' : (() => { throw new Error(`--dtype must be fp32 or q4, not ${values.dtype}`); })();

/** Small images with a different pattern each, as PNG and JPEG. */
async function makeImages(dir: string, n: number): Promise<void> {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < n; i++) {
    const w = 48 + ((i * 13) % 80);
    const h = 40 + ((i * 7) % 64);
    const px = Buffer.alloc(w * h * 3);
    for (let p = 0; p < px.length; p++) px[p] = (p * (i + 5) + i * 17) & 255;
    const fmt = i % 2 ? 'jpeg' : 'png';
    await sharp(px, { raw: { width: w, height: h, channels: 3 } }).toFormat(fmt).toFile(path.join(dir, `img${String(i).padStart(4, '0')}.${fmt === 'jpeg' ? 'jpg' : 'png'}`));
  }
}

/** Which fixture: bench-llava when its generator has made it (test/fixtures/STATUS.md), else tiny-llava. */
async function chooseModel(requested: string | undefined): Promise<string> {
  if (requested) return (await ensureFixtures([requested]))[0];
  try {
    await loadModel(fixtureDir('bench-llava'), { provider: 'cpu' }).then((m) => m.dispose());
    return fixtureDir('bench-llava');
  } catch {
    process.stderr.write('bench-llava is not available (npx tsx test/fixtures/generate.ts --bench); using tiny-llava\n');
    return (await ensureFixtures(['tiny-llava']))[0];
  }
}

interface Row {
  mode: string;
  batch: number;
  images: number;
  seconds: number;
  imagesPerMinute: number;
}

async function ours(dir: string, folder: string, batch: number, batched: boolean, work: string): Promise<Row> {
  const model = await loadModel(dir, { provider: 'cpu', variant: DTYPE, threads });
  try {
    const images = await expandImagePaths([folder]);
    const manifest = path.join(work, `ours-${batched ? 'b' : 's'}${batch}.jsonl`);
    // Warm-up (not timed): ONNX Runtime's first runs at new shapes are several times slower (allocations).
    await runCaptionJob(modelCaptionBackend(model, { batched }), { images: images.slice(0, batch), output: 'jsonl', manifest: `${manifest}.warm`, batchSize: batch, maxNewTokens: newTokens });
    const t = performance.now();
    const s = await runCaptionJob(modelCaptionBackend(model, { batched }), { images, output: 'jsonl', manifest, batchSize: batch, maxNewTokens: newTokens });
    const seconds = (performance.now() - t) / 1000;
    if (s.failed.length) throw new Error(`failed: ${JSON.stringify(s.failed[0])}`);
    return { mode: batched ? 'batched' : 'one-by-one', batch, images: s.captioned, seconds, imagesPerMinute: (s.captioned * 60) / seconds };
  } finally {
    await model.dispose();
  }
}

async function transformersJs(dir: string, folder: string): Promise<Row> {
  const { AutoProcessor, LlavaForConditionalGeneration, RawImage, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = MODELS_DIR + path.sep;
  const name = path.basename(dir);
  const processor = await AutoProcessor.from_pretrained(name);
  const model = await LlavaForConditionalGeneration.from_pretrained(name, { dtype: DTYPE, device: 'cpu', session_options: { intraOpNumThreads: threads } });
  const chatTemplate = JSON.parse(readFileSync(path.join(dir, 'chat_template.json'), 'utf8')).chat_template;
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: PRESET_PROMPTS.short }] }];
  const text = processor.apply_chat_template(messages, { add_generation_prompt: true, chat_template: chatTemplate });
  const images = await expandImagePaths([folder]);
  const caption = async (file: string) => {
    const inputs = await processor(await RawImage.read(file), text);
    const out = await model.generate({ ...inputs, max_new_tokens: newTokens, do_sample: false });
    processor.batch_decode(out as import('@huggingface/transformers').Tensor, { skip_special_tokens: true });
  };
  await caption(images[0]); // warm-up, as for ours
  const t = performance.now();
  for (const file of images) {
    await caption(file);
  }
  const seconds = (performance.now() - t) / 1000;
  await model.dispose();
  return { mode: 'transformers.js loop', batch: 1, images: images.length, seconds, imagesPerMinute: (images.length * 60) / seconds };
}

/** The memory phase, in this process: RSS after loading, then after captioning every image. */
async function memoryRun(dir: string, count: number): Promise<Record<string, number | string>> {
  const work = mkdtempSync(path.join(os.tmpdir(), 'llava-capmem-'));
  try {
    const folder = path.join(work, 'images');
    await makeImages(folder, count);
    const model = await loadModel(dir, { provider: 'cpu', variant: DTYPE, threads });
    const images = await expandImagePaths([folder]);
    const rssStart = process.memoryUsage().rss;
    let peak = rssStart;
    let atHalf = 0;
    const t = performance.now();
    const s = await runCaptionJob(modelCaptionBackend(model), {
      images, output: 'sidecar', batchSize: 4, maxNewTokens: Math.min(newTokens, 8),
      onProgress: (p) => {
        peak = Math.max(peak, process.memoryUsage().rss);
        if (!atHalf && p.done >= p.total / 2) atHalf = process.memoryUsage().rss;
      },
    });
    const rssEnd = process.memoryUsage().rss;
    await model.dispose();
    return { model: path.basename(dir), images: s.captioned, seconds: (performance.now() - t) / 1000, rssStartMiB: mib(rssStart), rssHalfMiB: mib(atHalf), rssEndMiB: mib(rssEnd), rssPeakMiB: mib(peak) };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const mib = (b: number) => Math.round((b / 2 ** 20) * 10) / 10;

async function main(): Promise<void> {
  if (values['memory-only']) {
    process.stdout.write(JSON.stringify(await memoryRun(values['memory-only'], Number(values['memory-images']))) + '\n');
    return;
  }
  const dir = await chooseModel(values.model);
  const work = mkdtempSync(path.join(os.tmpdir(), 'llava-capbench-'));
  const folder = path.join(work, 'images');
  await makeImages(folder, Number(values.images));
  const modes = values.modes!.split(',');
  const rows: Row[] = [];
  const log = (r: Row) => process.stderr.write(`  ${r.mode} (batch ${r.batch}): ${r.imagesPerMinute.toFixed(1)} img/min\n`);
  try {
    process.stderr.write(`model ${path.basename(dir)} ${DTYPE}, ${values.images} images, ${newTokens} new tokens, ${threads} threads\n`);
    if (modes.includes('single')) rows.push(await ours(dir, folder, 1, false, work)), log(rows.at(-1)!);
    if (modes.includes('batched')) for (const b of values.batch!.split(',').map(Number)) rows.push(await ours(dir, folder, b, true, work)), log(rows.at(-1)!);
    if (modes.includes('transformers.js')) rows.push(await transformersJs(dir, folder)), log(rows.at(-1)!);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  // memory: a fresh process, so earlier phases' allocations do not count
  const memoryModel = values['memory-model'] ? (await ensureFixtures([values['memory-model']]))[0] : dir;
  process.stderr.write(`memory run: ${values['memory-images']} images on ${path.basename(memoryModel)}...\n`);
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--memory-only', memoryModel, '--memory-images', values['memory-images']!, '--threads', String(threads), '--new-tokens', String(newTokens), '--dtype', DTYPE], { encoding: 'utf8', maxBuffer: 1 << 24 });
  const memory = child.status === 0 ? JSON.parse(child.stdout.trim().split('\n').at(-1)!) : { error: child.stderr.slice(-2000) };

  const base = rows.find((r) => r.mode === 'one-by-one')?.imagesPerMinute;
  const table = [
    `| mode | batch | images | seconds | images/min | vs one-by-one |`,
    `| --- | ---: | ---: | ---: | ---: | ---: |`,
    ...rows.map((r) => `| ${r.mode} | ${r.batch} | ${r.images} | ${r.seconds.toFixed(1)} | ${r.imagesPerMinute.toFixed(1)} | ${base ? (r.imagesPerMinute / base).toFixed(2) + 'x' : '-'} |`),
  ].join('\n');
  process.stdout.write(`\nCaptioning ${values.images} images, model ${path.basename(dir)} ${DTYPE}, ${newTokens} new tokens, ${threads} threads, CPU (${os.cpus()[0]?.model ?? '?'}, ${os.cpus().length} cores)\n\n${table}\n\nMemory over ${values['memory-images']} images: ${JSON.stringify(memory)}\n`);
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `caption-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ model: path.basename(dir), dtype: DTYPE, images: Number(values.images), newTokens, threads, cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, rows, memory }, null, 2));
  process.stdout.write(`JSON: ${path.relative(process.cwd(), file)}\n`);
}

main().catch((err) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
