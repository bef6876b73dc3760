// The CLI's one download path, shared by `llava download` and `--model <catalog id | owner/repo>`
// of ask / caption / info: resolve the name (catalog id, else any Hub repo), list the repository,
// choose each part's variant from what exists, print the plan, download with progress on stderr.
// HF_ENDPOINT and HF_TOKEN come from the environment (src/hub/http.ts).

import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import * as path from 'node:path';
import {
  BUILTIN_MODEL_LABEL,
  builtinModelFolder,
  checkLocalModelFolder,
  parseModelSetting,
  downloadOffer,
  downloadPlan,
  formatBytes,
  loadCatalog,
  missingModelFiles,
  planFromHub,
  readManifest,
  resolveHubModel,
  type DownloadPlan,
  type ResolvedHubModel,
} from '../hub';
import { formatVariantChoice, MODEL_PARTS, onnxPath, type VariantChoice } from '../core';
import { UsageError } from './args';

/** Where downloads go without --dir: $LLAVA_MODELS_DIR, else <cache>/llava-vscode/models. */
export function defaultModelsDir(): string {
  if (process.env.LLAVA_MODELS_DIR) return process.env.LLAVA_MODELS_DIR;
  const cache = process.env.XDG_CACHE_HOME || (process.platform === 'win32' ? process.env.LOCALAPPDATA : undefined) || path.join(homedir(), '.cache');
  return path.join(cache, 'llava-vscode', 'models');
}

/** `name[:variants]` -> a Hub model, or a UsageError saying why not. */
export function resolveName(name: string, opts: { variant?: string; revision?: string; dir?: string }, usage: string): ResolvedHubModel {
  const colon = name.lastIndexOf(':');
  const ref = colon > 0 ? { name: name.slice(0, colon), variant: name.slice(colon + 1) } : { name, variant: opts.variant };
  const r = resolveHubModel(loadCatalog(), ref, opts.dir ?? defaultModelsDir());
  if ('error' in r) throw new UsageError(r.error, usage);
  return opts.revision ? { ...r, revision: opts.revision } : r;
}

/** The plan as lines: what resolved to what, and the file chosen per part with its size. */
export function describePlan(plan: DownloadPlan, dryRun = false): string {
  const offer = downloadOffer(plan);
  const size = (p: string) => formatBytes(plan.files.find((f) => f.path === p)?.size);
  const onnx = new Set(MODEL_PARTS.map((part) => onnxPath(part, plan.variants[part])));
  const others = plan.files.filter((f) => !onnx.has(f.path));
  const othersBytes = others.every((f) => f.size !== undefined) ? others.reduce((n, f) => n + f.size!, 0) : undefined;
  return [
    `${plan.label === plan.repo ? '' : `${plan.label}: `}${plan.repo}@${plan.revision} -> commit ${plan.commit}`,
    ...MODEL_PARTS.map((part) => `  ${part.padEnd(8)} ${plan.variants[part].padEnd(10)} ${onnxPath(part, plan.variants[part]).padEnd(44)} ${size(onnxPath(part, plan.variants[part]))}`),
    `  + ${others.length} other files (${others.map((f) => path.posix.basename(f.path)).join(', ')}) ${formatBytes(othersBytes)}`,
    `${dryRun ? 'Would download' : 'Downloading'} ${plan.label}, ${offer.sizeText} (licence ${plan.licence ?? 'see the repository'}, ${formatVariantChoice(plan.variants)})`,
  ].join('\n');
}

export interface FetchOptions {
  provider?: 'cpu' | 'gpu';
  dryRun?: boolean;
  /** progress and the plan go here (stderr for ask/caption, whose stdout is the answer) */
  out: (text: string) => void;
}

/** Lists, plans, prints the plan, downloads (unless dryRun); returns the plan and the folder. */
export async function fetchHubModel(model: ResolvedHubModel, opts: FetchOptions): Promise<{ plan: DownloadPlan; folder: string }> {
  const plan = await planFromHub({ repo: model.repo, revision: model.revision, entry: model.entry, choice: model.choice, folder: model.folder }, { provider: opts.provider ?? 'cpu' });
  opts.out(`${describePlan(plan, opts.dryRun)}\n`);
  if (opts.dryRun) return { plan, folder: model.folder };
  const root = path.dirname(model.folder);
  const done = new Set<string>();
  const folder = await downloadPlan(plan, root, {
    onWaitForLock: (h) => opts.out(`waiting: ${h ? `process ${h.pid} on ${h.host}` : 'another process'} is downloading into ${model.folder}\n`),
    // one line per finished file (already complete ones included), nothing in between: the CLI's
    // output is read by people and scripts, not redrawn
    onProgress: (p) => {
      if (p.fileTotal === undefined || p.fileBytes !== p.fileTotal || done.has(p.file)) return;
      done.add(p.file);
      opts.out(`  done ${p.file} (${formatBytes(p.fileBytes)})\n`);
    },
  });
  opts.out(`ready: ${folder}\n`);
  return { plan, folder };
}

/**
 * The folder the program ships in: the nearest folder at or above `fromDir` holding a package.json
 * (the bundle dist/cli.js -> the extension's or the repository's root; src/cli under tsx -> the
 * repository's root). Without one, the folder above `fromDir`.
 */
export function packageRootOf(fromDir: string): string {
  for (let dir = path.resolve(fromDir); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (dir === path.dirname(dir)) return path.resolve(fromDir, '..');
  }
}

/** `--model builtin`: the model shipped with the program, `<package root>/models/builtin`. */
export function builtinModelDir(fromDir: string = __dirname): string {
  return builtinModelFolder(packageRootOf(fromDir));
}

/**
 * `--model` of ask / caption / info: `builtin` is the model shipped with the program (a folder of
 * that name is `./builtin`); an existing folder is used as is; otherwise a catalog id or
 * Hub repo, downloaded first when its folder is not complete. Returns the folder and the variants
 * to load (the user's, else what was downloaded).
 */
export async function modelFolderFor(
  name: string,
  opts: { variant?: VariantChoice; dir?: string; log: (text: string) => void; /** where the program runs from (tests) */ programDir?: string },
  usage: string,
): Promise<{ dir: string; variant?: VariantChoice }> {
  // the setting's own reading of the word, so `--model` and `llava.model` agree on what `builtin` is
  if (parseModelSetting(name, homedir()).kind === 'builtin') {
    const dir = builtinModelDir(opts.programDir);
    const problem = await checkLocalModelFolder(dir);
    if (problem) throw new Error(`--model builtin: this copy of llava does not include the ${BUILTIN_MODEL_LABEL}: ${problem}`);
    return { dir, variant: opts.variant };
  }
  if (existsSync(name) && statSync(name).isDirectory()) return { dir: name, variant: opts.variant };
  if (path.isAbsolute(name) || name.startsWith('.')) throw new Error(`${name}: no such model folder`);
  const model = resolveName(name, { dir: opts.dir }, usage);
  const variant = opts.variant ?? model.choice;
  if ((await missingModelFiles(model.folder)).length) {
    opts.log(`${name} is not downloaded yet: downloading into ${model.folder}\n`);
    await fetchHubModel({ ...model, ...(variant !== undefined ? { choice: variant } : {}) }, { out: opts.log });
  }
  return { dir: model.folder, variant: variant ?? (await readManifest(model.folder))?.variants };
}
