// From a llava-hf checkpoint repository's file list to the files a local conversion needs (catalog
// entries of kind "convert"): the configs, tokenizer and template that exist, and the weights: the
// shards `model-0000i-of-0000n.safetensors` with their `model.safetensors.index.json`, or one
// `model.safetensors`. And the offer the user confirms before anything is fetched: the download, the
// disk the converted model takes in the chosen dtype, the memory to run it, the licence. Pure.

import { DownloadError, type VariantMap } from '../core';
import type { ConversionEntry } from './catalog';
import type { RepoListing } from './listing';
import { MODEL_FILES, formatBytes, plannedFiles, type DownloadPlan } from './plan';

export type ConversionDtypeName = keyof ConversionEntry['dtypes'];

/** Root files the converter copies or reads besides the weights (tokenizer.model: sentencepiece models keep it). */
const CHECKPOINT_SIDE_FILES = [...MODEL_FILES, 'tokenizer.model'];
export const CHECKPOINT_INDEX = 'model.safetensors.index.json';
const SHARD = /^model-(\d+)-of-(\d+)\.safetensors$/;

/** The folder, under the models root, the checkpoint is downloaded into (the converted model goes to `<id>`). */
export function checkpointFolderId(entry: ConversionEntry): string {
  return `${entry.id}.checkpoint`;
}

/**
 * The dtype to convert to: the entry's own choice for the provider (q4 on a CPU; fp16 on a GPU when
 * the entry offers it, else the first GPU dtype), the entry's default otherwise.
 */
export function conversionDtype(entry: ConversionEntry, provider: 'cpu' | 'gpu'): ConversionDtypeName {
  const offered = Object.keys(entry.dtypes) as ConversionDtypeName[];
  if (provider === 'gpu') {
    if (entry.dtypes.fp16?.target === 'gpu') return 'fp16';
    const gpu = offered.find((d) => entry.dtypes[d]!.target === 'gpu');
    if (gpu) return gpu;
  } else {
    if (entry.dtypes.q4?.target === 'cpu') return 'q4';
    const cpu = offered.find((d) => entry.dtypes[d]!.target === 'cpu');
    if (cpu) return cpu;
  }
  return entry.defaultDtype;
}

export function planCheckpointDownload(listing: RepoListing, entry: ConversionEntry, dtype: ConversionDtypeName): DownloadPlan {
  const name = `${listing.repo}@${listing.revision}`;
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  for (const r of ['config.json', 'tokenizer.json']) {
    if (!byPath.has(r)) throw new DownloadError(`${name}: the repository has no ${r} at ${listing.commit.slice(0, 7)}: not a llava-hf checkpoint`);
  }
  const shards = listing.files.map((f) => f.path).filter((p) => SHARD.test(p)).sort();
  let weights: string[];
  if (byPath.has(CHECKPOINT_INDEX)) {
    if (shards.length === 0) throw new DownloadError(`${name}: ${CHECKPOINT_INDEX} is there but no model-*-of-*.safetensors shard`);
    const of = new Set(shards.map((s) => Number(SHARD.exec(s)![2])));
    const count = [...of][0];
    if (of.size !== 1 || shards.length !== count) {
      throw new DownloadError(`${name}: the shards do not match their names (${shards.length} of ${[...of].join('/')}): ${shards.join(', ')}`);
    }
    weights = [CHECKPOINT_INDEX, ...shards];
  } else if (byPath.has('model.safetensors')) {
    weights = ['model.safetensors'];
  } else {
    throw new DownloadError(`${name}: no model.safetensors nor ${CHECKPOINT_INDEX} (only safetensors checkpoints can be converted; pytorch_model.bin is not read)`);
  }
  const paths = [...new Set([...CHECKPOINT_SIDE_FILES, ...entry.files.map((f) => f.path).filter((p) => !p.endsWith('.safetensors') && p !== CHECKPOINT_INDEX)])]
    .filter((p) => byPath.has(p))
    .concat(weights);

  const pins = new Map(entry.files.map((f) => [f.path, f]));
  const { files, total } = plannedFiles(name, paths, byPath, pins);
  // a checkpoint has no ONNX variants; the manifest records the dtype it is being converted to
  const variants: VariantMap = { vision: dtype, embed: dtype, decoder: dtype };
  return {
    id: checkpointFolderId(entry),
    repo: listing.repo,
    label: `${entry.label}: checkpoint`,
    licence: entry.licence,
    revision: listing.revision,
    commit: listing.commit,
    variants,
    files,
    ...(total !== undefined ? { totalBytes: total } : {}),
  };
}

/** What the user confirms before a conversion starts. */
export interface ConversionOffer {
  dtype: ConversionDtypeName;
  /** bytes to download: the plan's total when the listing gave every size, else the catalog's figure */
  downloadBytes: number;
  /** the converted model on disk, in `dtype` */
  diskBytes: number;
  /** memory to run it (RAM on a CPU, GPU memory on a GPU) */
  runBytes: number;
  target: 'cpu' | 'gpu';
  /** "Download and convert LLaVA-1.5-7B? 14.1 GB download, 4.9 GB after conversion (q4)" */
  question: string;
  /** one line per fact, for the modal's detail */
  detail: string;
  /** the quick pick's description: "14.1 GB download · 4.9 GB q4 · 7.0 GB RAM" */
  summary: string;
}

export function conversionOffer(entry: ConversionEntry, dtype: ConversionDtypeName, plan?: DownloadPlan): ConversionOffer {
  const d = entry.dtypes[dtype];
  if (!d) throw new DownloadError(`${entry.id}: no ${dtype} conversion in the catalog (offered: ${Object.keys(entry.dtypes).join(', ')})`);
  const downloadBytes = plan?.totalBytes ?? entry.checkpointBytes;
  const memory = d.target === 'gpu' ? 'GPU memory' : 'RAM';
  const short = entry.label.replace(/\s*\(.*\)\s*$/, '');
  return {
    dtype,
    downloadBytes,
    diskBytes: d.diskBytes,
    runBytes: d.runBytes,
    target: d.target,
    question: `Download and convert ${short}? ${formatBytes(downloadBytes)} download, ${formatBytes(d.diskBytes)} after conversion (${dtype}).`,
    detail: [
      `Download: ${formatBytes(downloadBytes)} (the ${entry.repo} checkpoint, kept for reruns until you delete it)`,
      `Disk after conversion: ${formatBytes(d.diskBytes)} in ${dtype} (the checkpoint and the converted model both: ${formatBytes(downloadBytes + d.diskBytes)})`,
      `To run: about ${formatBytes(d.runBytes)} of ${memory} (${d.target === 'gpu' ? 'a GPU' : 'CPU'}, ${entry.contextTokens} tokens of context)`,
      `Licence: ${entry.licence} (${entry.homepage})`,
      plan ? `Commit ${plan.commit.slice(0, 7)}` : undefined,
      'The conversion runs here, without Python; cancelling keeps the finished parts and the next run resumes.',
    ].filter(Boolean).join('\n'),
    summary: `${formatBytes(entry.checkpointBytes)} download · ${formatBytes(d.diskBytes)} ${dtype} · ${formatBytes(d.runBytes)} ${memory}`,
  };
}
