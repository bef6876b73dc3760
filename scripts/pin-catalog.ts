// Pins models/catalog.json to exact Hub commits: for each entry, asks the Hub which commit its
// revision points to and the size and sha256 of every listed file, then writes them back with
// `"pinned": true`. Needs network access to the Hub (or HF_ENDPOINT / --endpoint to a mirror).
//
//   npx tsx scripts/pin-catalog.ts [--catalog models/catalog.json] [--model <id>]... [--endpoint URL] [--dry-run]
//
// Source of the facts: GET {endpoint}/api/models/{repo}/revision/{rev}?blobs=true answers
// { sha: <commit>, siblings: [{ rfilename, size, blobId, lfs?: { sha256, size } }] }.
// LFS files get the sha256 from that listing. Small non-LFS files have only a git blob id there,
// so they are fetched from the pinned commit, checked against that blob id, and hashed.
// A file the catalog lists but the Hub does not have is reported and nothing is written.

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { parseCatalog, type CatalogEntry, type CatalogFile } from '../src/hub/catalog';

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256: string; size: number };
}

export interface PinOptions {
  endpoint?: string;
  token?: string;
}

export interface PinResult {
  entry: CatalogEntry;
  /** catalog paths the Hub does not have at that revision */
  missing: string[];
}

export async function pinEntry(entry: CatalogEntry, opts: PinOptions = {}): Promise<PinResult> {
  const endpoint = (opts.endpoint ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const headers: Record<string, string> = opts.token ? { authorization: `Bearer ${opts.token}` } : {};
  const infoUrl = `${endpoint}/api/models/${entry.repo}/revision/${encodeURIComponent(entry.revision)}?blobs=true`;
  const res = await fetch(infoUrl, { headers });
  if (!res.ok) throw new Error(`${infoUrl}: HTTP ${res.status}`);
  const info = (await res.json()) as { sha?: string; siblings?: Sibling[] };
  if (!info.sha || !/^[0-9a-f]{40}$/.test(info.sha) || !Array.isArray(info.siblings)) {
    throw new Error(`${infoUrl}: unexpected answer (no commit sha or siblings)`);
  }
  const commit = info.sha;
  const byName = new Map(info.siblings.map((s) => [s.rfilename, s]));
  const missing: string[] = [];

  const pinFile = async (f: CatalogFile): Promise<CatalogFile> => {
    const s = byName.get(f.path);
    if (!s) {
      missing.push(f.path);
      return f;
    }
    if (s.lfs) return { path: f.path, size: s.lfs.size, sha256: s.lfs.sha256 };
    // not LFS: fetch it from the pinned commit and hash it; the blob id proves it is that version
    const url = `${endpoint}/${entry.repo}/resolve/${commit}/${f.path.split('/').map(encodeURIComponent).join('/')}`;
    const r = await fetch(url, { headers });
    if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
    const data = Buffer.from(await r.arrayBuffer());
    if (s.blobId) {
      const git = createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
      if (git !== s.blobId) throw new Error(`${entry.repo}/${f.path}: git blob id ${git} does not match the Hub's ${s.blobId}`);
    }
    return { path: f.path, size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
  };

  const files: CatalogFile[] = [];
  for (const f of entry.files) files.push(await pinFile(f));
  const variants: CatalogEntry['variants'] = {};
  for (const [name, v] of Object.entries(entry.variants)) {
    const pinned: CatalogFile[] = [];
    for (const f of v.files) pinned.push(await pinFile(f));
    variants[name] = { ...v, files: pinned };
  }
  return { entry: { ...entry, revision: commit, pinned: true, files, variants }, missing };
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
    raw.models[i] = { ...(raw.models[i] as object), revision: r.entry.revision, pinned: true, files: r.entry.files, variants: r.entry.variants };
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
    console.error('not written: fix the file lists above (the Hub does not have those paths)');
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
