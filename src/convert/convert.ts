// `convertCheckpoint`: a llava-hf checkpoint folder -> a transformers.js-layout folder
// (onnx/vision_encoder*, embed_tokens*, decoder_model_merged* per dtype, configs, tokenizer, template).
//
// Order of work: read config.json and the safetensors headers; plan every graph and check that each
// tensor it needs is present with the configured shape (before anything is written); check free disk
// space against the parts still to do; then build one part (one session in one dtype) at a time,
// pulling tensors one by one and streaming them to disk. A finished part is recorded in
// `.llava-convert.json` and not redone by a later run of the same conversion (resume after cancel).

import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, statfsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { AbortedError, ConvertError, DiskSpaceError } from '../core';
import { CheckpointSource } from './checkpoint';
import { specFromLlavaConfig } from './llavaConfig';
import type { BuilderOptions, GraphBuilder, PlannedWeight, WeightSource } from './onnxBuilder';
import { ExternalDataSink, INLINE_LIMIT_BYTES, writeModel } from './onnxWriter';
import { Q4_BLOCK_SIZE, q4Bytes, type Q4BlockSize, type Q4Scales } from './quantize';
import { SafetensorsCheckpoint } from './safetensors';
import type { LlavaSpec } from './spec';
import { buildFastDecoder } from './fastDecoder';
import { buildDecoder, buildEmbedTokens } from './textGraphs';
import { buildVisionEncoder } from './visionGraph';

export const CONVERT_DTYPES = ['fp32', 'fp16', 'q4', 'q4f16'] as const;
export type ConvertDtype = (typeof CONVERT_DTYPES)[number];
export type SessionName = 'vision_encoder' | 'embed_tokens' | 'decoder_model_merged';
/** hub: plain ONNX ops like the Hub's exports; fast: onnxruntime contrib ops (fp32 and q4 only) */
export type DecoderGraph = 'hub' | 'fast';
export const FAST_GRAPH_DTYPES: readonly ConvertDtype[] = ['fp32', 'q4'];

const SUFFIX: Record<ConvertDtype, string> = { fp32: '', fp16: '_fp16', q4: '_q4', q4f16: '_q4f16' };
const BUILDERS: Record<SessionName, (s: LlavaSpec, o: BuilderOptions) => GraphBuilder> = {
  vision_encoder: buildVisionEncoder,
  embed_tokens: buildEmbedTokens,
  decoder_model_merged: buildDecoder,
};
const SESSIONS = Object.keys(BUILDERS) as SessionName[];
/** Everything but the weights a llava-hf folder holds that the engine or transformers.js reads. */
const COPIED_FILES = [
  'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json',
  'special_tokens_map.json', 'added_tokens.json', 'chat_template.json', 'chat_template.jinja', 'tokenizer.model',
];
export const MANIFEST = '.llava-convert.json';

/** q4 stores linear layers as MatMulNBits; the embedding table is gathered, so it stays float (fp32 in q4, fp16 in q4f16). */
function builderFlags(dtype: ConvertDtype): { fp16Weights: boolean; q4: boolean } {
  return { fp16Weights: dtype === 'fp16' || dtype === 'q4f16', q4: dtype === 'q4' || dtype === 'q4f16' };
}

export interface ConvertPart {
  session: SessionName;
  dtype: ConvertDtype;
  /** relative to the output folder: onnx/<session><suffix>.onnx */
  file: string;
  /** bytes of weights the part writes (estimated from the plan) */
  outBytes: number;
  /** bytes of checkpoint data it reads */
  inBytes: number;
}

export interface ConvertProgress {
  part: ConvertPart;
  partIndex: number;
  partCount: number;
  /** checkpoint bytes read so far over all parts (parts skipped as already done count as read) */
  bytesRead: number;
  bytesTotal: number;
  /** the tensor just read, or undefined when a part starts, is skipped or ends */
  tensor?: string;
  state: 'start' | 'tensor' | 'skipped' | 'done';
}

export interface ConvertOptions {
  from: string;
  out: string;
  dtypes: readonly ConvertDtype[];
  /** the decoder's kind (default hub) */
  graph?: DecoderGraph;
  /** q4 block scales: absmax (default, as the Hub's files) or search (least squared error, slower) */
  q4Scales?: Q4Scales;
  /** q4 weights per block scale (default Q4_BLOCK_SIZE, 32, as the Hub's files) */
  q4Block?: Q4BlockSize;
  onProgress?: (p: ConvertProgress) => void;
  /** checked between tensors (a part left half-way is redone by the next run) */
  signal?: AbortSignal;
  /** graphs with more weight bytes than this keep them in `<file>.onnx_data` (default INLINE_LIMIT_BYTES: 128 MiB) */
  inlineLimitBytes?: number;
  /** free bytes of the output disk (tests); default: statfs */
  freeBytes?: (dir: string) => number;
}

export interface ConvertResult {
  spec: LlavaSpec;
  parts: ConvertPart[];
  /** parts found already done and skipped */
  skipped: string[];
  /** parts whose weights went to external data */
  external: string[];
  bytesRead: number;
  seconds: number;
}

function readJson(file: string, label: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConvertError(label, existsSync(file) ? `not JSON: ${(err as Error).message}` : 'missing (a llava-hf checkpoint folder has one)', { cause: err });
  }
}

/** The weights one session needs (HF names, PyTorch shapes), whatever the dtype. */
export function planSession(spec: LlavaSpec, session: SessionName): PlannedWeight[] {
  const plan: PlannedWeight[] = [];
  const nothing: WeightSource = { tensor: () => new Float32Array(0), linear: () => new Float32Array(0) };
  BUILDERS[session](spec, { fp16Weights: false, source: nothing, plan });
  return plan;
}

/**
 * Bytes of weights a session writes in `dtype` (the graph's own constants are a few KB more). In q4 a weight that
 * turns out mostly zeros is stored sparse when that is smaller (onnxBuilder), so this is an upper bound there.
 */
export function estimateBytes(plan: PlannedWeight[], dtype: ConvertDtype, q4Block: number = Q4_BLOCK_SIZE): number {
  const { fp16Weights, q4 } = builderFlags(dtype);
  let bytes = 0;
  for (const w of plan) {
    const count = w.torchShape.reduce((a, b) => a * b, 1);
    if (w.linear && q4) {
      const [N, K] = w.torchShape;
      bytes += q4Bytes(N, K, q4Block);
    } else {
      bytes += count * (fp16Weights ? 2 : 4);
    }
  }
  return bytes;
}

interface Manifest {
  source: string;
  done: string[];
  external: string[];
}

/** Identifies the source (config, tensor table, shard names, sizes, mtimes): a changed checkpoint starts over. */
function fingerprint(ckpt: SafetensorsCheckpoint, configText: string): string {
  const h = createHash('sha256').update(configText);
  for (const t of ckpt.tensors.values()) h.update(`${t.name}:${t.dtype}:${t.shape.join('x')}:${t.offset}\n`);
  for (const file of [...new Set([...ckpt.tensors.values()].map((t) => t.file))].sort()) {
    const st = statSync(file);
    h.update(`${path.basename(file)}:${st.size}:${st.mtimeMs}`);
  }
  return h.digest('hex');
}

function defaultFreeBytes(dir: string): number {
  const st = statfsSync(dir);
  return st.bavail * st.bsize;
}

/** Counts bytes read, reports each tensor, and stops between tensors when cancelled. */
function meteredSource(inner: CheckpointSource, onTensor: (name: string) => void, signal?: AbortSignal): WeightSource {
  return {
    tensor(name, dims, init) {
      if (signal?.aborted) throw new AbortedError('Conversion cancelled');
      const v = inner.tensor(name, dims, init);
      onTensor(name);
      return v;
    },
    linear(name, K, N, init, layout) {
      if (signal?.aborted) throw new AbortedError('Conversion cancelled');
      const v = inner.linear(name, K, N, init, layout);
      onTensor(name);
      return v;
    },
  };
}

export function convertCheckpoint(opts: ConvertOptions): ConvertResult {
  const started = performance.now();
  const config = readJson(path.join(opts.from, 'config.json'), 'config.json'); // names the file when missing
  const configText = readFileSync(path.join(opts.from, 'config.json'), 'utf8');
  const spec = specFromLlavaConfig(config, path.basename(path.resolve(opts.from)));
  const graph = opts.graph ?? 'hub';
  const unsupported = graph === 'fast' ? opts.dtypes.filter((d) => !FAST_GRAPH_DTYPES.includes(d)) : [];
  if (unsupported.length > 0) throw new ConvertError('--graph fast', `is written for ${FAST_GRAPH_DTYPES.join(' and ')} (CPU); not ${unsupported.join(', ')}`);
  const ckpt = new SafetensorsCheckpoint(opts.from);
  try {
    const tied = config.tie_word_embeddings === true || (config.text_config as Record<string, unknown> | undefined)?.tie_word_embeddings === true;
    const source = new CheckpointSource(ckpt, tied);
    const plans = Object.fromEntries(SESSIONS.map((s) => [s, planSession(spec, s)])) as Record<SessionName, PlannedWeight[]>;
    for (const s of SESSIONS) source.checkAll(plans[s]);
    const sourceBytes = (plan: PlannedWeight[]) => plan.reduce((n, w) => n + ckpt.info(source.resolve(w.name)).byteLength, 0);

    const parts: ConvertPart[] = opts.dtypes.flatMap((dtype) =>
      SESSIONS.map((session) => ({
        session,
        dtype,
        file: `onnx/${session}${SUFFIX[dtype]}.onnx`,
        outBytes: estimateBytes(plans[session], dtype, opts.q4Block),
        inBytes: sourceBytes(plans[session]),
      })),
    );

    mkdirSync(path.join(opts.out, 'onnx'), { recursive: true });
    const manifestPath = path.join(opts.out, MANIFEST);
    const q4Scales = opts.q4Scales ?? 'absmax';
    const q4Block = opts.q4Block ?? Q4_BLOCK_SIZE;
    // the defaults add nothing, so folders converted before an option existed still resume
    const id = fingerprint(ckpt, configText + graph + (q4Scales === 'absmax' ? '' : `|q4 scales ${q4Scales}`) + (q4Block === Q4_BLOCK_SIZE ? '' : `|q4 block ${q4Block}`));
    let manifest: Manifest = { source: id, done: [], external: [] };
    if (existsSync(manifestPath)) {
      const old = readJson(manifestPath, MANIFEST) as unknown as Manifest;
      if (old.source === id && Array.isArray(old.done)) manifest = { source: id, done: old.done, external: old.external ?? [] };
    }
    const isDone = (p: ConvertPart) =>
      manifest.done.includes(p.file) &&
      existsSync(path.join(opts.out, p.file)) &&
      (!manifest.external.includes(p.file) || existsSync(path.join(opts.out, `${p.file}_data`)));
    const inlineLimit = opts.inlineLimitBytes ?? INLINE_LIMIT_BYTES;

    // a single-file part briefly exists twice (data file + .onnx); an external one once
    const needed = parts.filter((p) => !isDone(p)).reduce((n, p) => n + p.outBytes * (p.outBytes <= inlineLimit ? 2 : 1), 0);
    const free = (opts.freeBytes ?? defaultFreeBytes)(opts.out);
    if (free < needed) throw new DiskSpaceError(opts.out, needed, free);

    const bytesTotal = parts.reduce((n, p) => n + p.inBytes, 0);
    let bytesRead = 0;
    const skipped: string[] = [];
    parts.forEach((part, partIndex) => {
      const report = (state: ConvertProgress['state'], tensor?: string) =>
        opts.onProgress?.({ part, partIndex, partCount: parts.length, bytesRead, bytesTotal, tensor, state });
      if (isDone(part)) {
        bytesRead += part.inBytes;
        skipped.push(part.file);
        report('skipped');
        return;
      }
      report('start');
      const finalPath = path.join(opts.out, part.file);
      const dataName = `${path.basename(part.file)}_data`;
      const sink = new ExternalDataSink(`${finalPath}_data.partial`, dataName);
      try {
        const metered = meteredSource(source, (name) => {
          bytesRead += ckpt.info(source.resolve(name)).byteLength;
          report('tensor', name);
        }, opts.signal);
        const build = graph === 'fast' && part.session === 'decoder_model_merged' ? buildFastDecoder : BUILDERS[part.session];
        const builder = build(spec, { ...builderFlags(part.dtype), q4Scales, q4Block, source: metered, sink });
        rmSync(path.join(opts.out, 'onnx', dataName), { force: true }); // a stale external file of an earlier, bigger run
        const written = writeModel(builder, sink, finalPath, inlineLimit);
        manifest.done = [...manifest.done.filter((f) => f !== part.file), part.file];
        manifest.external = manifest.external.filter((f) => f !== part.file).concat(written.external ? [part.file] : []);
        writeFileSync(manifestPath, JSON.stringify(manifest, null, 2));
      } catch (err) {
        sink.close();
        rmSync(`${finalPath}_data.partial`, { force: true });
        rmSync(`${finalPath}.partial`, { force: true });
        throw err;
      }
      report('done');
    });

    writeSideFiles(opts.from, opts.out, config, manifest.external);
    return { spec, parts, skipped, external: manifest.external, bytesRead, seconds: (performance.now() - started) / 1000 };
  } finally {
    ckpt.close();
  }
}

/**
 * The configs, tokenizer and template, copied; config.json gains transformers.js_config naming the
 * graphs with external data (transformers.js fetches `<file>_data` only when told), and
 * processor_config.json's num_additional_image_tokens becomes 0: transformers.js adds it to the patch
 * count without subtracting the dropped class token (HF Python does), so llava-hf's 1 would make one
 * `<image>` more than the encoder has rows. Our engine counts the encoder's rows either way.
 */
function writeSideFiles(from: string, out: string, config: Record<string, unknown>, external: string[]): void {
  for (const f of COPIED_FILES) {
    if (existsSync(path.join(from, f))) copyFileSync(path.join(from, f), path.join(out, f));
  }
  const jsConfig = { ...((config['transformers.js_config'] as Record<string, unknown>) ?? {}) };
  if (external.length > 0) jsConfig.use_external_data_format = Object.fromEntries(external.map((f) => [path.basename(f), 1]));
  const outConfig = Object.keys(jsConfig).length > 0 ? { ...config, 'transformers.js_config': jsConfig } : config;
  atomicWrite(path.join(out, 'config.json'), JSON.stringify(outConfig, null, 2) + '\n');
  const processorFile = path.join(from, 'processor_config.json');
  if (existsSync(processorFile)) {
    const processor = readJson(processorFile, 'processor_config.json');
    if (config.vision_feature_select_strategy !== 'full' && processor.num_additional_image_tokens === 1) processor.num_additional_image_tokens = 0;
    atomicWrite(path.join(out, 'processor_config.json'), JSON.stringify(processor, null, 2) + '\n');
  }
}

function atomicWrite(file: string, text: string): void {
  writeFileSync(`${file}.partial`, text);
  renameSync(`${file}.partial`, file);
}
