// Pins models/catalog.json to exact Hub commits: for each entry, asks the Hub which commit its
// revision points to and records the size and sha256 of every file a download could choose there
// (the model files plus every variant of the three ONNX parts), with `"pinned": true`. Needs network
// access to the Hub (or HF_ENDPOINT / --endpoint to a mirror).
//
//   npx tsx scripts/pin-catalog.ts [--catalog models/catalog.json] [--model <id>]... [--endpoint URL] [--dry-run]
//
// Source of the facts: the hub's own listing (src/hub/listing.ts: GET {endpoint}/api/models/{repo}/
// revision/{rev}?blobs=true). LFS files get the sha256 from that listing. Small non-LFS files have
// only a git blob id there, so they are fetched from the pinned commit, checked against that blob
// id, and hashed. A repository without the files a model needs (config.json, tokenizer.json,
// preprocessor_config.json, a variant of each ONNX part) is reported and nothing is written.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCatalog, type CatalogEntry, type CatalogFile } from '../src/hub/catalog';
import { listRepo, type ListedFile } from '../src/hub/listing';
import { MODEL_FILES, REQUIRED_FILES, planDownload } from '../src/hub/plan';
import { endpointOf, hubRequest, type HubRequestOptions } from '../src/hub/http';
import { parseOnnxPath } from '../src/core/variants';

export type PinOptions = HubRequestOptions;

export interface PinResult {
  entry: CatalogEntry;
  /** what the repository lacks at that revision for the entry to be usable */
  missing: string[];
}

export async function pinEntry(entry: CatalogEntry, opts: PinOptions = {}): Promise<PinResult> {
  const listing = await listRepo(entry.repo, entry.revision, opts);
  const byName = new Map(listing.files.map((f) => [f.path, f]));
  const missing: string[] = REQUIRED_FILES.filter((f) => !byName.has(f));
  if (!missing.length) {
    try {
      planDownload(listing, {}); // every part has some variant
    } catch (err) {
      missing.push((err as Error).message);
    }
  }
  if (missing.length) return { entry, missing };

  const relevant = listing.files.filter((f) => (MODEL_FILES as readonly string[]).includes(f.path) || isOnnxOfAPart(f.path, byName));
  const pinFile = async (f: ListedFile): Promise<CatalogFile> => {
    if (f.sha256 && f.size !== undefined) return { path: f.path, size: f.size, sha256: f.sha256 };
    // not LFS: fetch it from the pinned commit and hash it; the blob id proves it is that version
    const url = `${endpointOf(opts)}/${entry.repo}/resolve/${listing.commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    const { res } = await hubRequest(url, { ...opts, name: `${entry.repo}/${f.path}` });
    const chunks: Buffer[] = [];
    for await (const c of res) chunks.push(c as Buffer);
    if (res.statusCode !== 200) throw new Error(`${url}: HTTP ${res.statusCode}`);
    const data = Buffer.concat(chunks);
    if (f.blobId) {
      const git = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
      if (git !== f.blobId) throw new Error(`${entry.repo}/${f.path}: git blob id ${git} does not match the Hub's ${f.blobId}`);
    }
    return { path: f.path, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  };
  const files: CatalogFile[] = [];
  for (const f of relevant) files.push(await pinFile(f));
  return { entry: { ...entry, revision: listing.commit, pinned: true, files }, missing };
}

/** An ONNX file of one of the three parts, or the external data of one. */
function isOnnxOfAPart(path: string, byName: Map<string, ListedFile>): boolean {
  if (parseOnnxPath(path)) return true;
  const m = /^(.*\.onnx)(_data.*|\.data.*)$/.exec(path);
  return !!m && !!parseOnnxPath(m[1]) && byName.has(m[1]);
}

/** Pins the chosen entries (all when `ids` is empty) of the catalog file; returns what it did. */
export async function pinCatalog(
  catalogPath: string,
  opts: PinOptions & { ids?: string[]; dryRun?: boolean; log?: (line: string) => void } = {},
): Promise<{ written: boolean; missing: Record<string, string[]> }> {
  const log = opts.log ?? (() => {});
  const raw = JSON.parse(readFileSync(catalogPath, 'utf8')) as { models: unknown[] };
  const catalog = parseCatalog(raw, catalogPath);
  const missing: Record<string, string[]> = {};
  for (const [i, entry] of catalog.models.entries()) {
    if (opts.ids?.length && !opts.ids.includes(entry.id)) continue;
    const r = await pinEntry(entry, opts);
    if (r.missing.length) {
      missing[entry.id] = r.missing;
      log(`${entry.id}: ${entry.repo}@${entry.revision} lacks ${r.missing.join(', ')}`);
      continue;
    }
    log(`${entry.id}: ${entry.repo}@${entry.revision} -> ${r.entry.revision}`);
    // keep the JSON's own key order and extra keys; replace only what pinning decides
    raw.models[i] = { ...(raw.models[i] as object), revision: r.entry.revision, pinned: true, files: r.entry.files };
  }
  if (Object.keys(missing).length || opts.dryRun) return { written: false, missing };
  parseCatalog(raw, catalogPath); // never write a catalog that would not load
  writeFileSync(catalogPath, `${JSON.stringify(raw, null, 2)}\n`);
  return { written: true, missing };
}

async function main(argv: string[]): Promise<number> {
  const args = { catalog: 'models/catalog.json', ids: [] as string[], endpoint: undefined as string | undefined, dryRun: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--catalog') args.catalog = argv[++i];
    else if (a === '--model') args.ids.push(argv[++i]);
    else if (a === '--endpoint') args.endpoint = argv[++i];
    else if (a === '--dry-run') args.dryRun = true;
    else {
      console.error(`unknown argument ${a}\nusage: pin-catalog [--catalog path] [--model id]... [--endpoint URL] [--dry-run]`);
      return 2;
    }
  }
  const r = await pinCatalog(args.catalog, { ...args, token: process.env.HF_TOKEN, log: (l) => console.log(l) });
  if (Object.keys(r.missing).length) {
    console.error('not written: the repositories above lack files a model needs at that revision');
    return 1;
  }
  console.log(r.written ? `wrote ${args.catalog}` : 'dry run: nothing written');
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof Error ? err.message : err);
      process.exit(1);
    },
  );
}
