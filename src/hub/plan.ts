// From a repository's file list to the exact files to fetch: the model's own files (configs,
// tokenizer, templates) that exist, and for each part (vision, embed, decoder) the best variant that
// exists for the execution provider, or that the model's config.json declares (src/core/variants.ts, the rule
// the engine applies to a local folder), with its external-data companions. Pure: the listing and the config
// come from listing.ts.

import { choosePartVariants, declaredVariants, describeVariants, DownloadError, formatVariantChoice, MODEL_PARTS, onnxPath, parseOnnxPath, type DtypeVariant, type ModelPart, type VariantChoice, type VariantMap } from '../core';
import type { CatalogEntry } from './catalog';
import type { RepoListing } from './listing';

/** Root files the engine reads when present. */
export const MODEL_FILES = [
  'config.json', 'generation_config.json', 'preprocessor_config.json', 'processor_config.json', 'chat_template.json',
  'chat_template.jinja', 'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
] as const;
/** Without these the engine cannot load the folder. */
export const REQUIRED_FILES = ['config.json', 'preprocessor_config.json', 'tokenizer.json'] as const;

export interface PlannedFile {
  path: string;
  size?: number;
  sha256?: string;
  /** where the sha256 comes from: the catalog's pin, or the Hub's file list */
  sha256From?: 'catalog' | 'hub';
  blobId?: string;
}

export interface DownloadPlan {
  /** folder name under the models root */
  id: string;
  repo: string;
  label: string;
  licence?: string;
  revision: string;
  commit: string;
  variants: VariantMap;
  files: PlannedFile[];
  /** sum of every file's size; undefined when the listing left any size out */
  totalBytes?: number;
}

/** The folder name of a repository that is not in the catalog: `owner--name`. */
export function folderIdForRepo(repo: string): string {
  return repo.replace('/', '--');
}

export function planDownload(
  listing: RepoListing,
  model: { entry?: CatalogEntry; provider?: 'cpu' | 'gpu'; choice?: VariantChoice; config?: unknown },
): DownloadPlan {
  const { entry } = model;
  const name = `${listing.repo}@${listing.revision}`;
  const byPath = new Map(listing.files.map((f) => [f.path, f]));
  for (const r of REQUIRED_FILES) {
    if (!byPath.has(r)) throw new DownloadError(`${name}: the repository has no ${r} at ${listing.commit.slice(0, 7)}: not a model in the transformers.js layout`);
  }

  const available = { vision: [], embed: [], decoder: [] } as Record<ModelPart, DtypeVariant[]>;
  for (const f of listing.files) {
    const p = parseOnnxPath(f.path);
    if (p) available[p.part].push(p.variant);
  }
  const provider = model.provider ?? 'cpu';
  // what the model's config.json declares (transformers.js_config.dtype) comes before the provider's order, as in the engine
  const picked = choosePartVariants(available, provider, model.choice, declaredVariants(model.config, provider));
  if (!('variants' in picked)) throw new DownloadError(`${name}: ${picked.reason}`);

  const pins = new Map((entry?.files ?? []).map((f) => [f.path, f]));
  const paths = [
    ...MODEL_FILES.filter((p) => byPath.has(p)),
    ...MODEL_PARTS.flatMap((part) => {
      const main = onnxPath(part, picked.variants[part]);
      // external data written beside the graph (`x.onnx_data`, `x.onnx_data_1`, `x.onnx.data`)
      const data = listing.files.map((f) => f.path).filter((p) => p.startsWith(`${main}_data`) || p.startsWith(`${main}.data`)).sort();
      return [main, ...data];
    }),
  ];
  const { files, total } = plannedFiles(name, paths, byPath, pins);
  return {
    id: entry?.id ?? folderIdForRepo(listing.repo),
    repo: listing.repo,
    label: entry?.label ?? listing.repo,
    ...(entry?.licence ? { licence: entry.licence } : {}),
    revision: listing.revision,
    commit: listing.commit,
    variants: picked.variants,
    files,
    ...(total !== undefined ? { totalBytes: total } : {}),
  };
}

const GB = 1_000_000_000;
const MB = 1_000_000;

/** "1.1 GB", "812 MB", "3.4 MB" (decimal units, as the Hub shows sizes), or "size unknown". */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined) return 'size unknown';
  if (bytes >= GB) return `${(bytes / GB).toFixed(1)} GB`;
  const mb = bytes / MB;
  return `${mb < 10 ? mb.toFixed(1) : Math.round(mb).toString()} MB`;
}

/** What a download offer shows: "Download nanoLLaVA-1.5, 1.1 GB?" plus the licence and the choice. */
export interface DownloadOffer {
  label: string;
  sizeText: string;
  totalBytes?: number;
  licence?: string;
  variants: VariantMap;
  commit: string;
  /** "Download nanoLLaVA-1.5, 1.1 GB?" */
  question: string;
  /** "Licence apache-2.0 · 4-bit, smallest, for CPUs (vision=q4,embed=fp32,decoder=q4) · commit 9e3be3e" */
  detail: string;
}

export function downloadOffer(plan: DownloadPlan): DownloadOffer {
  const sizeText = formatBytes(plan.totalBytes);
  return {
    label: plan.label,
    sizeText,
    ...(plan.totalBytes !== undefined ? { totalBytes: plan.totalBytes } : {}),
    ...(plan.licence ? { licence: plan.licence } : {}),
    variants: plan.variants,
    commit: plan.commit,
    question: `Download ${plan.label}, ${sizeText}?`,
    detail: [plan.licence ? `Licence ${plan.licence}` : 'Licence: see the repository', `${describeVariants(plan.variants)} (${formatVariantChoice(plan.variants)})`, `commit ${plan.commit.slice(0, 7)}`].join(' · '),
  };
}

/**
 * The files to fetch, each with its size and sha256: the catalog's pin when there is one (a pin
 * the listing contradicts is an error), else what the Hub listed. `total` is undefined when any size is.
 */
export function plannedFiles(
  name: string,
  paths: readonly string[],
  byPath: ReadonlyMap<string, RepoListing['files'][number]>,
  pins: ReadonlyMap<string, { size?: number; sha256?: string }>,
): { files: PlannedFile[]; total: number | undefined } {
  let total: number | undefined = 0;
  const files = paths.map((path): PlannedFile => {
    const listed = byPath.get(path)!;
    const pin = pins.get(path);
    if (pin?.size !== undefined && listed.size !== undefined && pin.size !== listed.size) {
      throw new DownloadError(`${name}: ${path} is ${listed.size} bytes on the Hub but the catalog pins ${pin.size}`);
    }
    const size = pin?.size ?? listed.size;
    total = total === undefined || size === undefined ? undefined : total + size;
    const sha256 = pin?.sha256 ?? listed.sha256;
    return {
      path,
      ...(size !== undefined ? { size } : {}),
      ...(sha256 ? { sha256, sha256From: pin?.sha256 ? 'catalog' : 'hub' } : {}),
      ...(listed.blobId ? { blobId: listed.blobId } : {}),
    };
  });
  return { files, total };
}
