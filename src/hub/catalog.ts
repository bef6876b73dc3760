// The model catalog: which Hub repositories we know how to run, the facts about each that a model
// folder cannot say (box frame, referring prompts, licence, label) and, once pinned, the exact
// commit with each file's size and sha256. Which files exist, and so which variant each part uses,
// is never written here: the Hub's file list decides (listing.ts, plan.ts). Preprocessing and
// prompt format are not here either: the engine reads them from the folder (preprocessor_config.json,
// config.json, the chat template). Data lives in models/catalog.json (see models/README.md); this
// module types and validates it so a bad edit fails loudly with the field's path in the message.

import { readFileSync } from 'node:fs';
import bundledCatalog from '../../models/catalog.json';
import { ModelFolderError } from '../core';
import type { BoxFrame, PreprocessMode, PromptFormatName, ReferringPrompts } from '../core';

export interface CatalogFile {
  /** path inside the repository, '/'-separated (e.g. 'onnx/decoder_model_merged_q4.onnx') */
  path: string;
  /** bytes; absent until pinned (scripts/pin-catalog.ts) */
  size?: number;
  /** lowercase hex; absent until pinned. The downloader then trusts the Hub's LFS header. */
  sha256?: string;
}

/** What every catalog entry says about its Hub repository. */
interface CatalogRepo {
  /** stable id, also the folder name under the models root */
  id: string;
  label: string;
  description?: string;
  /** Hub repository, 'owner/name' */
  repo: string;
  /** branch, tag or commit; a 40-hex commit when pinned */
  revision: string;
  /** false: revision is a moving branch and sizes/sha256 were not recorded by the pin script */
  pinned: boolean;
  /** pinned entries: size and sha256 of files at `revision` (scripts/pin-catalog.ts); else empty */
  files: CatalogFile[];
  licence: string;
  homepage: string;
  /** where the facts in this entry come from */
  sources?: string[];
}

/** A model whose ONNX export is downloaded ready to run. */
export interface CatalogEntry extends CatalogRepo {
  boxFrame: BoxFrame;
  prompts: ReferringPrompts;
}

/** Byte counts of one dtype a conversion can produce. */
export interface ConversionDtype {
  /** the converted folder's ONNX weights (configs and tokenizer add a few MB) */
  diskBytes: number;
  /** memory to run it: weights + KV cache at `contextTokens` + 1 GiB working memory (RAM on CPU, VRAM on GPU) */
  runBytes: number;
  /** where it runs well: q4 on CPU; fp16 / q4f16 on a GPU (the CPU EP casts fp16 weights up to fp32) */
  target: 'cpu' | 'gpu';
}

/**
 * A model with no ONNX export: its llava-hf checkpoint (safetensors; `repo`) is downloaded with `files`
 * (configs, tokenizer, template, safetensors index and, when known, the shards it names) and converted
 * on the user's machine (`src/convert`). Offered only with these sizes shown first.
 */
export interface ConversionEntry extends CatalogRepo {
  kind: 'convert';
  /** bytes of the safetensors weights to download */
  checkpointBytes: number;
  /** tokens of context the runBytes figures allow for */
  contextTokens: number;
  dtypes: Partial<Record<'fp32' | 'fp16' | 'q4' | 'q4f16', ConversionDtype>>;
  defaultDtype: 'fp32' | 'fp16' | 'q4' | 'q4f16';
  promptFormat: PromptFormatName | 'chat_template';
  preprocess: PreprocessMode;
  boxFrame: BoxFrame;
}

export interface Catalog {
  schemaVersion: 2;
  defaultModel: string;
  models: CatalogEntry[];
  /** models converted locally from a checkpoint (kind "convert"); not in `models`, which are downloaded ready to run */
  conversions: ConversionEntry[];
}

/** A catalog file that does not match the schema; `file` is the catalog's path. */
export class CatalogError extends ModelFolderError {}

const BOX_FRAMES: BoxFrame[] = ['norm1', 'norm1000', 'input_pixels', 'loc_tokens'];
/** conversion entries only: the converted folder's prompt format and preprocessing, shown before converting */
const PROMPT_FORMATS = ['chat_template', 'vicuna_v1', 'chatml'] as const;
const PREPROCESS_MODES: PreprocessMode[] = ['crop', 'resize', 'pad'];
const ID = /^[a-z0-9][a-z0-9._-]*$/i;
const REPO = /^[A-Za-z0-9][\w.-]*\/[A-Za-z0-9][\w.-]*$/;
const SHA256 = /^[0-9a-f]{64}$/;
const COMMIT = /^[0-9a-f]{40}$/;

/**
 * Reads and validates a catalog. Without a path: the catalog bundled with the extension
 * (models/catalog.json at build time).
 */
export function loadCatalog(path?: string): Catalog {
  if (path === undefined) return parseCatalog(bundledCatalog, 'models/catalog.json');
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new CatalogError(path, `cannot read the catalog: ${(err as Error).message}`, { cause: err });
  }
  return parseCatalog(json, path);
}

export function findEntry(catalog: Catalog, id: string): CatalogEntry {
  const entry = catalog.models.find((m) => m.id === id);
  if (!entry) {
    throw new CatalogError('catalog', `no model "${id}" (known: ${catalog.models.map((m) => m.id).join(', ')})`);
  }
  return entry;
}

/** Validates parsed JSON; every message names the offending field, e.g. `models[1].files[0].sha256`. */
export function parseCatalog(json: unknown, source: string): Catalog {
  const fail = (where: string, msg: string): never => {
    throw new CatalogError(source, `${where}: ${msg}`);
  };
  const obj = (v: unknown, where: string): Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : fail(where, 'expected an object');
  const str = (v: unknown, where: string, re?: RegExp): string => {
    if (typeof v !== 'string' || v === '') return fail(where, 'expected a non-empty string');
    if (re && !re.test(v)) return fail(where, `"${v}" is not valid (expected ${re})`);
    return v;
  };
  const oneOf = <T extends string>(v: unknown, where: string, allowed: readonly T[]): T =>
    allowed.includes(v as T) ? (v as T) : fail(where, `expected one of ${allowed.join(', ')}, got ${JSON.stringify(v)}`);

  const file = (v: unknown, where: string): CatalogFile => {
    const o = obj(v, where);
    const path = str(o.path, `${where}.path`);
    if (path.startsWith('/') || path.split('/').some((p) => p === '..' || p === '.' || p === '')) {
      fail(`${where}.path`, `"${path}" must be a relative path inside the repository`);
    }
    const out: CatalogFile = { path };
    if (o.size !== undefined) {
      if (!Number.isSafeInteger(o.size) || (o.size as number) < 0) fail(`${where}.size`, 'expected a byte count');
      out.size = o.size as number;
    }
    if (o.sha256 !== undefined) out.sha256 = str(o.sha256, `${where}.sha256`, SHA256);
    return out;
  };
  const files = (v: unknown, where: string): CatalogFile[] => {
    if (!Array.isArray(v)) return fail(where, 'expected an array of files');
    return v.map((f, i) => file(f, `${where}[${i}]`));
  };

  const root = obj(json, 'catalog');
  if (root.schemaVersion !== 2) fail('schemaVersion', `expected 2, got ${JSON.stringify(root.schemaVersion)}`);
  if (!Array.isArray(root.models) || root.models.length === 0) fail('models', 'expected a non-empty array');
  const models = (root.models as unknown[]).map((m, i): CatalogEntry => {
    const w = `models[${i}]`;
    const o = obj(m, w);
    const pinned = o.pinned;
    if (typeof pinned !== 'boolean') fail(`${w}.pinned`, 'expected true or false');
    const revision = str(o.revision, `${w}.revision`);
    if (pinned && !COMMIT.test(revision)) fail(`${w}.revision`, 'a pinned entry needs a 40-hex commit');
    for (const gone of ['variants', 'defaultVariant', 'promptFormat', 'preprocess']) {
      if (o[gone] !== undefined) fail(`${w}.${gone}`, 'is no longer read (schema 2): the Hub file list chooses the files, the model folder says how to preprocess and prompt');
    }
    const p = obj(o.prompts, `${w}.prompts`);
    const prompts: ReferringPrompts = {
      find: str(p.find, `${w}.prompts.find`),
      describeRegion: str(p.describeRegion, `${w}.prompts.describeRegion`),
      region: str(p.region, `${w}.prompts.region`),
    };
    if (!prompts.find.includes('{phrase}')) fail(`${w}.prompts.find`, 'must contain {phrase}');
    if (!prompts.describeRegion.includes('{region}')) fail(`${w}.prompts.describeRegion`, 'must contain {region}');
    for (const k of ['{x1}', '{y1}', '{x2}', '{y2}']) {
      if (!prompts.region.includes(k)) fail(`${w}.prompts.region`, `must contain ${k}`);
    }
    const entry: CatalogEntry = {
      id: str(o.id, `${w}.id`, ID),
      label: str(o.label, `${w}.label`),
      repo: str(o.repo, `${w}.repo`, REPO),
      revision,
      pinned: pinned as boolean,
      files: o.files === undefined ? [] : files(o.files, `${w}.files`),
      boxFrame: oneOf(o.boxFrame, `${w}.boxFrame`, BOX_FRAMES),
      prompts,
      licence: str(o.licence, `${w}.licence`),
      homepage: str(o.homepage, `${w}.homepage`, /^https:\/\//),
    };
    if (o.description !== undefined) entry.description = str(o.description, `${w}.description`);
    if (o.sources !== undefined) {
      if (!Array.isArray(o.sources)) fail(`${w}.sources`, 'expected an array of strings');
      entry.sources = (o.sources as unknown[]).map((s, k) => str(s, `${w}.sources[${k}]`));
    }
    const seen = new Set<string>();
    for (const f of entry.files) {
      if (seen.has(f.path)) fail(`${w}.files`, `"${f.path}" is listed twice`);
      if (pinned && (f.size === undefined || f.sha256 === undefined)) fail(`${w}.files`, `"${f.path}" needs size and sha256 in a pinned entry`);
      seen.add(f.path);
    }
    return entry;
  });
  const ids = new Set<string>();
  for (const [i, m] of models.entries()) {
    if (ids.has(m.id)) fail(`models[${i}].id`, `duplicate id "${m.id}"`);
    ids.add(m.id);
  }
  const defaultModel = str(root.defaultModel, 'defaultModel');
  if (!ids.has(defaultModel)) fail('defaultModel', `"${defaultModel}" is not one of the models`);

  const bytes = (v: unknown, where: string): number =>
    Number.isSafeInteger(v) && (v as number) > 0 ? (v as number) : fail(where, 'expected a positive byte count');
  const DTYPES = ['fp32', 'fp16', 'q4', 'q4f16'] as const;
  if (root.conversions !== undefined && !Array.isArray(root.conversions)) fail('conversions', 'expected an array');
  const conversions = ((root.conversions as unknown[] | undefined) ?? []).map((c, i): ConversionEntry => {
    const w = `conversions[${i}]`;
    const o = obj(c, w);
    if (o.kind !== 'convert') fail(`${w}.kind`, `expected "convert", got ${JSON.stringify(o.kind)}`);
    if (typeof o.pinned !== 'boolean') fail(`${w}.pinned`, 'expected true or false');
    const revision = str(o.revision, `${w}.revision`);
    if (o.pinned && !COMMIT.test(revision)) fail(`${w}.revision`, 'a pinned entry needs a 40-hex commit');
    const entryFiles = files(o.files, `${w}.files`);
    const paths = entryFiles.map((f) => f.path);
    for (const needed of ['config.json', 'tokenizer.json']) if (!paths.includes(needed)) fail(`${w}.files`, `must include ${needed}`);
    // the shard names come from the index when they are not listed (an unpinned entry may not know them yet)
    if (!paths.some((p) => p.endsWith('.safetensors') || p === 'model.safetensors.index.json')) fail(`${w}.files`, 'must include the .safetensors weights or their index');
    const dtypesObj = obj(o.dtypes, `${w}.dtypes`);
    const dtypes: ConversionEntry['dtypes'] = {};
    for (const [name, d] of Object.entries(dtypesObj)) {
      const dw = `${w}.dtypes.${name}`;
      const key = oneOf(name, dw, DTYPES);
      const dobj = obj(d, dw);
      dtypes[key] = { diskBytes: bytes(dobj.diskBytes, `${dw}.diskBytes`), runBytes: bytes(dobj.runBytes, `${dw}.runBytes`), target: oneOf(dobj.target, `${dw}.target`, ['cpu', 'gpu'] as const) };
      if (dtypes[key]!.runBytes < dtypes[key]!.diskBytes) fail(`${dw}.runBytes`, 'is less than the weights it loads');
    }
    const defaultDtype = oneOf(o.defaultDtype, `${w}.defaultDtype`, DTYPES);
    if (!dtypes[defaultDtype]) fail(`${w}.defaultDtype`, `"${defaultDtype}" is not one of the dtypes`);
    const id = str(o.id, `${w}.id`, ID);
    if (ids.has(id)) fail(`${w}.id`, `duplicate id "${id}"`);
    ids.add(id);
    const entry: ConversionEntry = {
      kind: 'convert',
      id,
      label: str(o.label, `${w}.label`),
      repo: str(o.repo, `${w}.repo`, REPO),
      revision,
      pinned: o.pinned as boolean,
      files: entryFiles,
      checkpointBytes: bytes(o.checkpointBytes, `${w}.checkpointBytes`),
      contextTokens: bytes(o.contextTokens, `${w}.contextTokens`),
      dtypes,
      defaultDtype,
      promptFormat: oneOf(o.promptFormat, `${w}.promptFormat`, PROMPT_FORMATS),
      preprocess: oneOf(o.preprocess, `${w}.preprocess`, PREPROCESS_MODES),
      boxFrame: oneOf(o.boxFrame, `${w}.boxFrame`, BOX_FRAMES),
      licence: str(o.licence, `${w}.licence`),
      homepage: str(o.homepage, `${w}.homepage`, /^https:\/\//),
    };
    if (o.description !== undefined) entry.description = str(o.description, `${w}.description`);
    if (o.sources !== undefined) {
      if (!Array.isArray(o.sources)) fail(`${w}.sources`, 'expected an array of strings');
      entry.sources = (o.sources as unknown[]).map((s, k) => str(s, `${w}.sources[${k}]`));
    }
    return entry;
  });
  return { schemaVersion: 2, defaultModel, models, conversions };
}
