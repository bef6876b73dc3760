// One benchmark measurement in a fresh process: load one engine (ours or transformers.js) on a model
// folder, generate a fixed number of greedy tokens for one image + question, and write the timings and
// this process's peak RSS to a JSON file. A fresh process per measurement keeps peak RSS per engine
// and stops one engine's allocator state from colouring the other's numbers.
//
//   node --import tsx bench/worker.ts <job.json>
//
// The job file (written by engine.bench.ts) names the engine, the folder, the question, the pixel file
// (our preprocessing's [3, H, W] f32 values, fed to both engines) and where to write the result.

import { readFileSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { onnxPath } from '../src/core/variants';
import { onnx } from '../src/engine/onnxProto';
import { peakRssBytes } from './peakRss';

/**
 * 'ours' is the working tree; 'ours@<ref>' is src/engine as committed at a git ref (before/after runs);
 * 'ours+options' is the working tree with engine.bench's --also-options merged into its session options.
 */
export type EngineName = 'ours' | 'transformers.js' | `ours@${string}` | 'ours+options';

export interface WorkerJob {
  engine: EngineName;
  dir: string;
  question: string;
  pixelsFile: string;
  geometry: import('../src/core/types').ImageGeometry;
  newTokens: number;
  /** one variant for every part or a full per-part map */
  dtype: import('../src/core/variants').VariantChoice;
  /** 0: ONNX Runtime's default for both engines */
  threads: number;
  resultFile: string;
  /** for ours@<ref>: the folder holding that ref's engine sources (index.ts) */
  engineDir?: string;
  /** merged into every session's options (experiments: arena, prepacking, ...) */
  sessionOptions?: Record<string, unknown>;
}

export interface WorkerResult {
  engine: EngineName;
  /** ms: folder -> ready to generate (sessions, tokenizer, processor) */
  loadMs: number;
  /** ms: generate() call -> first new token (image encode + prefill + first sample) */
  ttftMs: number;
  /** tokens after the first / ms after the first */
  decodeTokensPerSecond: number;
  /** ms: a follow-up question (the conversation so far + FOLLOW_UP) -> its first token */
  followUpTtftMs: number;
  /** ms: the first question asked again (Regenerate) -> its first token */
  regenerateTtftMs: number;
  newTokens: number;
  tokenIds: number[];
  promptTokens: number;
  /** ms of CPU (user + system, all threads) spent in the generate call: less noisy than wall time on a shared machine */
  generateCpuMs: number;
  /** bytes: this process's peak RSS at the end of the run (VmHWM: see peakRss.ts) */
  peakRssBytes: number;
  /** bytes of the ONNX files (or buffers) handed to InferenceSession.create */
  weightBytes: number;
  sessions: { source: string; bytes: number; options: string }[];
}

/**
 * Records every session either engine creates: both use this same onnxruntime-node (transformers.js
 * 4.3.1 pins 1.30.0, hoisted), so wrapping the static create() sees files or buffers from both.
 */
function recordSessions(merge: Record<string, unknown> | undefined): WorkerResult['sessions'] {
  const seen: WorkerResult['sessions'] = [];
  const original = ort.InferenceSession.create.bind(ort.InferenceSession) as (...args: unknown[]) => Promise<ort.InferenceSession>;
  (ort.InferenceSession as unknown as { create: unknown }).create = (...args: unknown[]) => {
    const [src] = args;
    let options = args[1];
    if (merge && options && typeof options === 'object') {
      const o = options as Record<string, unknown>;
      options = args[1] = { ...o, ...merge, extra: mergeDeep(o.extra, merge.extra) };
    }
    let bytes = typeof src === 'string' ? statSync(src).size : src instanceof Uint8Array ? src.byteLength : src instanceof ArrayBuffer ? src.byteLength : 0;
    let source = typeof src === 'string' ? path.basename(src) : `<buffer ${bytes} bytes>`;
    // a graph whose weights are external data (a file, or a graph the engine loads from memory): count the data
    const graph = src instanceof Uint8Array ? src : typeof src === 'string' && bytes < 64 * 2 ** 20 ? readFileSync(src) : undefined;
    const external = graph ? externalBytes(graph) : { bytes: 0, files: [] };
    if (external.bytes) {
      bytes += external.bytes;
      source = `${typeof src === 'string' ? path.basename(src) : `<graph of ${bytes - external.bytes} bytes>`} + ${external.files.join(', ')}`;
    }
    const opts = options && typeof options === 'object' ? options : {};
    seen.push({ source, bytes, options: JSON.stringify(opts, (k, v) => (k === 'externalData' ? undefined : v)) });
    return original(...args);
  };
  return seen;
}

/** Bytes of the external-data references in a ModelProto (every graph, subgraphs included) and the files they name. */
function externalBytes(model: Uint8Array): { bytes: number; files: string[] } {
  const proto = onnx().ModelProto.decode(model);
  const files = new Set<string>();
  let bytes = 0;
  const tensor = (t: import('onnx-proto').onnx.ITensorProto) => {
    const entries = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    if (!entries.has('location')) return;
    files.add(entries.get('location')!);
    bytes += Number(entries.get('length') ?? 0);
  };
  const graph = (g: import('onnx-proto').onnx.IGraphProto | null | undefined) => {
    for (const t of g?.initializer ?? []) tensor(t);
    for (const n of g?.node ?? []) for (const a of n.attribute ?? []) {
      if (a.t) tensor(a.t);
      for (const t of a.tensors ?? []) tensor(t);
      graph(a.g);
      for (const sub of a.graphs ?? []) graph(sub);
    }
  };
  graph(proto.graph);
  return { bytes, files: [...files] };
}

function mergeDeep(a: unknown, b: unknown): unknown {
  if (b === undefined) return a;
  if (!a || typeof a !== 'object' || !b || typeof b !== 'object') return b;
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) out[k] = mergeDeep(out[k], v);
  return out;
}

function cpuMs(u: NodeJS.CpuUsage): number {
  return (u.user + u.system) / 1000;
}

function readPixels(file: string): Float32Array {
  const buf = readFileSync(file);
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

/** The second question of the measured conversation (a short answer is enough to time its first token). */
export const FOLLOW_UP = { question: 'What colours stand out?', newTokens: 8 };

/** set by runOurs where the engine reads the embedding table from its file instead of a session */
let embeddingFile: WorkerResult['sessions'][number] | undefined;

async function runOurs(job: WorkerJob, pixels: Float32Array): Promise<Omit<WorkerResult, 'peakRssBytes' | 'weightBytes' | 'sessions' | 'engine'>> {
  const engineIndex = job.engineDir ? path.join(job.engineDir, 'index.ts') : '../src/engine/index';
  const { loadModel } = (await import(engineIndex)) as typeof import('../src/engine/index');
  const t0 = performance.now();
  const model = await loadModel(job.dir, { provider: 'cpu', variant: job.dtype, threads: job.threads || undefined });
  const loadMs = performance.now() - t0;
  // a table read row by row from its file is a weight of the model as much as one a session holds
  if (model.info.embeddings === 'rows read from the file') {
    const file = path.join(job.dir, onnxPath('embed', model.info.variants.embed));
    embeddingFile = { source: `${path.basename(file)} (rows read from the file)`, bytes: statSync(file).size, options: '{}' };
  }
  // keyed pixels: the chat's images (bytes) are keyed by content, so follow-ups reuse their cache
  const turns: import('../src/core/types').ChatTurn[] = [
    { role: 'user', text: job.question, images: [{ preprocessed: { pixelValues: pixels, geometry: job.geometry }, name: 'bench', key: 'bench' }] },
  ];
  const ask = async (t: typeof turns, maxNewTokens: number) => {
    for await (const ev of model.generate(t, { maxNewTokens })) if (ev.type === 'done') return ev;
    throw new Error('our engine ended without a done event');
  };
  const cpu = process.cpuUsage();
  const { stats, text } = await ask(turns, job.newTokens);
  const generateCpuMs = cpuMs(process.cpuUsage(cpu));
  const followUp = await ask([...turns, { role: 'assistant', text }, { role: 'user', text: FOLLOW_UP.question }], FOLLOW_UP.newTokens);
  const regenerate = await ask(turns, 1);
  await model.dispose();
  return {
    loadMs,
    ttftMs: stats.timeToFirstTokenMs,
    followUpTtftMs: followUp.stats.timeToFirstTokenMs,
    regenerateTtftMs: regenerate.stats.timeToFirstTokenMs,
    decodeTokensPerSecond: stats.decodeTokensPerSecond,
    newTokens: stats.newTokens,
    tokenIds: stats.tokenIds,
    promptTokens: stats.promptTokens,
    generateCpuMs,
  };
}

async function runTheirs(job: WorkerJob, pixels: Float32Array): Promise<Omit<WorkerResult, 'peakRssBytes' | 'weightBytes' | 'sessions' | 'engine'>> {
  const { AutoProcessor, LlavaForConditionalGeneration, RawImage, Tensor, env } = await import('@huggingface/transformers');
  env.allowRemoteModels = false;
  env.localModelPath = path.dirname(job.dir) + path.sep;
  const name = path.basename(job.dir);
  const sessionOptions = job.threads ? { intraOpNumThreads: job.threads } : undefined;

  const t0 = performance.now();
  const processor = await AutoProcessor.from_pretrained(name);
  const model = await LlavaForConditionalGeneration.from_pretrained(name, { dtype: tjsDtype(job.dtype) as any, device: 'cpu', session_options: sessionOptions });
  const loadMs = performance.now() - t0;

  // Like llava-hf's repos, the template lives in chat_template.json, which transformers.js does not read.
  const chatTemplate = JSON.parse(readFileSync(path.join(job.dir, 'chat_template.json'), 'utf8')).chat_template;
  const messages = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: job.question }] }];
  const text = processor.apply_chat_template(messages, { add_generation_prompt: true, chat_template: chatTemplate });
  // The processor needs an image of the right size to expand <image>; its pixels are then replaced by ours.
  const { inputWidth: w, inputHeight: h } = job.geometry;
  const blank = new RawImage(new Uint8ClampedArray(w * h * 3), w, h, 3);
  const inputs = await processor(blank, text);
  inputs.pixel_values = new Tensor('float32', pixels, [1, 3, h, w]);
  const promptTokens = inputs.input_ids.dims[1];

  // generate() calls streamer.put() once with the prompt, then once per new token, synchronously after sampling.
  const stamps: number[] = [];
  const streamer = { put: () => stamps.push(performance.now()), end: () => {} };
  const cpu = process.cpuUsage();
  const t1 = performance.now();
  const out = await model.generate({ ...inputs, max_new_tokens: job.newTokens, do_sample: false, streamer });
  const generateCpuMs = cpuMs(process.cpuUsage(cpu));
  const tokens = Array.from((out as { data: BigInt64Array }).data, Number).slice(promptTokens);
  const newStamps = stamps.slice(1);

  // A follow-up and a regenerate, the way a transformers.js app asks them: the whole conversation again.
  const firstTokenMs = async (msgs: typeof messages, maxNewTokens: number) => {
    const prompt = processor.apply_chat_template(msgs, { add_generation_prompt: true, chat_template: chatTemplate });
    const next = await processor(blank, prompt);
    next.pixel_values = inputs.pixel_values;
    const puts: number[] = []; // the prompt, then one per new token
    const t = performance.now();
    await model.generate({ ...next, max_new_tokens: maxNewTokens, do_sample: false, streamer: { put: () => puts.push(performance.now()), end: () => {} } });
    return puts[1] - t;
  };
  const answerText = processor.batch_decode([tokens], { skip_special_tokens: true })[0] as string;
  const followUpTtftMs = await firstTokenMs(
    [...messages, { role: 'assistant', content: [{ type: 'text', text: answerText }] }, { role: 'user', content: [{ type: 'text', text: FOLLOW_UP.question }] }],
    FOLLOW_UP.newTokens,
  );
  const regenerateTtftMs = await firstTokenMs(messages, 1);
  await model.dispose();
  const n = newStamps.length;
  return {
    loadMs,
    ttftMs: newStamps[0] - t1,
    followUpTtftMs,
    regenerateTtftMs,
    decodeTokensPerSecond: n > 1 ? ((n - 1) * 1000) / (newStamps[n - 1] - newStamps[0]) : 0,
    newTokens: tokens.length,
    tokenIds: tokens,
    promptTokens,
    generateCpuMs,
  };
}

async function main(): Promise<void> {
  const job = JSON.parse(readFileSync(process.argv[2], 'utf8')) as WorkerJob;
  const sessions = recordSessions(job.sessionOptions);
  const pixels = readPixels(job.pixelsFile);
  const measured = job.engine !== 'transformers.js' ? await runOurs(job, pixels) : await runTheirs(job, pixels);
  if (embeddingFile) sessions.push(embeddingFile);
  const result: WorkerResult = {
    engine: job.engine,
    ...measured,
    peakRssBytes: peakRssBytes(),
    weightBytes: sessions.reduce((n, s) => n + s.bytes, 0),
    sessions,
  };
  writeFileSync(job.resultFile, JSON.stringify(result));
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});

/** transformers.js' dtype for our variant choice: its name for `_quantized` is q8, and a map is keyed by session. */
function tjsDtype(choice: import('../src/core/variants').VariantChoice): string | Record<string, string> {
  const name = (v: string | undefined) => (v === 'quantized' ? 'q8' : (v ?? 'fp32'));
  if (typeof choice === 'string') return name(choice);
  return { vision_encoder: name(choice.vision), embed_tokens: name(choice.embed), decoder_model_merged: name(choice.decoder) };
}
