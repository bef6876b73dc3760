// A local stand-in for the Hugging Face Hub, bound to 127.0.0.1 on free ports, for download and
// pin tests. It mimics what the hub code and pin-catalog rely on:
//   GET /{repo}/resolve/{rev}/{path}   non-LFS: 200 with ETag = git blob id, X-Repo-Commit
//                                      LFS:     302 to the "CDN" (a second server, https with the
//                                               test certificate beside this file, another port)
//                                               with X-Linked-Etag = sha256, X-Linked-Size
//   GET /blobs/{sha256}                the CDN: Range -> 206 + Content-Range, past the end -> 416
//   GET /api/models/{repo}/revision/{rev}?blobs=true   siblings with size, blobId and lfs {sha256,size}
// `rev` is the branch or any commit; `moveBranch(files)` makes a new commit and points the branch
// at it (the old commit stays resolvable, like on the Hub). Switches (mutable between calls)
// inject the failures the tests need.

import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

/** The CDN's self-signed certificate for 127.0.0.1: pass as `ca` to the download. */
export const FAKE_CDN_CA = readFileSync(join(__dirname, 'fakeCdn.cert.pem'));
const FAKE_CDN_KEY = readFileSync(join(__dirname, 'fakeCdn.key.pem'));

export interface FakeFile {
  path: string;
  data: Buffer;
  /** served through the CDN redirect with the LFS headers, like weights on the Hub */
  lfs: boolean;
}

export interface SeenRequest {
  server: 'hub' | 'cdn';
  method: string;
  url: string;
  range?: string;
  authorization?: string;
}

export interface FakeHubSwitches {
  /** paths whose next transfer is cut after `dropAfterBytes` (each entry fires once) */
  dropOnce: Set<string>;
  dropAfterBytes: number;
  /** paths whose advertised checksum (X-Linked-Etag / ETag) is wrong */
  wrongChecksum: Set<string>;
  /** paths that answer 404 */
  missing: Set<string>;
  /** the CDN answers 200 with the whole file even when asked for a Range */
  ignoreRange: boolean;
  /** send bodies in chunks of this many bytes with `chunkDelayMs` between them (0: all at once) */
  chunkBytes: number;
  chunkDelayMs: number;
  /**
   * while set, every body's last bytes wait for this promise (a download that cannot finish until the test says);
   * not config.json's, which planning reads before a download takes its folder's lock
   */
  hold?: Promise<void>;
  /** LFS redirects point here instead of the https CDN (e.g. a plain-http URL, to be refused) */
  redirectTo?: (sha256: string) => string;
  /** paths always served short: this many bytes, with a matching Content-Length (a truncated file) */
  truncate: Map<string, number>;
  /** the listing leaves out sizes, LFS redirects leave out X-Linked-Size, full answers Content-Length */
  noSizes: boolean;
  /** LFS redirects leave out X-Linked-Etag */
  noLinkedEtag: boolean;
  /** the CDN adds headers of its own (e.g. a checksum header that must not count) */
  cdnHeaders: http.OutgoingHttpHeaders;
}

export interface FakeHub {
  /** use as `endpoint` */
  endpoint: string;
  cdnOrigin: string;
  repo: string;
  revision: string;
  /** the commit the branch points to now */
  commit: string;
  files: FakeFile[];
  /** a new commit with `files`, and the branch moved to it; returns the new commit */
  moveBranch(files: FakeFile[]): string;
  switches: FakeHubSwitches;
  requests: SeenRequest[];
  /** body bytes sent by both servers */
  bytesSent: () => number;
  close(): Promise<void>;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** config.json's size: planning reads it (the variants the model declares) before downloading */
export function configBytes(hub: FakeHub): number {
  return hub.files.find((f) => f.path === 'config.json')?.data.length ?? 0;
}

/** How many times config.json was asked for since request `from`. */
export function configReads(hub: FakeHub, from = 0): number {
  return hub.requests.slice(from).filter((r) => r.url.endsWith('/config.json')).length;
}

export function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export async function startFakeHub(opts: { repo: string; revision?: string; files: FakeFile[] }): Promise<FakeHub> {
  const revision = opts.revision ?? 'main';
  const commits = new Map<string, FakeFile[]>();
  let head = createHash('sha1').update(opts.repo + revision).digest('hex');
  commits.set(head, opts.files);
  const filesAt = (rev: string) => commits.get(rev === revision ? head : rev);
  const switches: FakeHubSwitches = {
    dropOnce: new Set(),
    dropAfterBytes: 1000,
    wrongChecksum: new Set(),
    missing: new Set(),
    ignoreRange: false,
    chunkBytes: 0,
    chunkDelayMs: 0,
    truncate: new Map(),
    noSizes: false,
    noLinkedEtag: false,
    cdnHeaders: {},
  };
  const requests: SeenRequest[] = [];
  let sent = 0;
  const bySha = new Map(opts.files.map((f) => [sha256(f.data), f]));
  const sockets = new Set<import('node:net').Socket>();

  const record = (server: 'hub' | 'cdn', req: http.IncomingMessage) =>
    requests.push({
      server,
      method: req.method ?? 'GET',
      url: req.url ?? '',
      range: req.headers.range,
      authorization: req.headers.authorization,
    });

  /** Sends `file` honouring Range and the switches. */
  const sendBody = (req: http.IncomingMessage, res: http.ServerResponse, whole: FakeFile, headers: http.OutgoingHttpHeaders) => {
    const cut = switches.truncate.get(whole.path);
    const file = cut === undefined ? whole : { ...whole, data: whole.data.subarray(0, cut) };
    const size = file.data.length;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (range && !switches.ignoreRange) {
      start = Number(range[1]);
      if (start >= size) {
        res.writeHead(416, { ...headers, 'content-range': `bytes */${size}` });
        res.end();
        return;
      }
      res.writeHead(206, { ...headers, 'content-length': size - start, 'content-range': `bytes ${start}-${size - 1}/${size}`, 'accept-ranges': 'bytes' });
    } else {
      // noSizes: chunked, no Content-Length (a server that does not say how much is coming)
      res.writeHead(200, { ...headers, ...(switches.noSizes ? {} : { 'content-length': size }), 'accept-ranges': 'bytes' });
    }
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let body = file.data.subarray(start);
    if (switches.dropOnce.has(file.path)) {
      switches.dropOnce.delete(file.path);
      body = body.subarray(0, switches.dropAfterBytes);
      sent += body.length;
      // write part of the body, then kill the connection mid-file
      res.write(body, () => setTimeout(() => res.socket?.destroy(), 20));
      return;
    }
    if (switches.chunkBytes <= 0) {
      sent += body.length;
      res.end(body);
      return;
    }
    let at = 0;
    const step = () => {
      if (res.destroyed) return;
      const piece = body.subarray(at, at + switches.chunkBytes);
      at += piece.length;
      sent += piece.length;
      if (at < body.length) res.write(piece, () => setTimeout(step, switches.chunkDelayMs));
      else if (switches.hold && file.path !== 'config.json') void switches.hold.then(() => res.end(piece));
      else res.end(piece);
    };
    step();
  };

  const cdn = https.createServer({ cert: FAKE_CDN_CA, key: FAKE_CDN_KEY }, (req, res) => {
    record('cdn', req);
    const m = /^\/blobs\/([0-9a-f]{64})/.exec(req.url ?? '');
    const file = m ? bySha.get(m[1]) : undefined;
    if (!file) {
      res.writeHead(404).end('no such blob');
      return;
    }
    sendBody(req, res, file, { 'content-type': 'application/octet-stream', etag: `"cdn-${m![1].slice(0, 8)}"`, ...switches.cdnHeaders });
  });
  await listen(cdn);
  const cdnOrigin = `https://127.0.0.1:${(cdn.address() as AddressInfo).port}`;

  const hub = http.createServer((req, res) => {
    record('hub', req);
    const url = new URL(req.url ?? '/', 'http://hub');
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      const listed = filesAt(decodeURIComponent(api[2]));
      if (api[1] !== opts.repo || !listed) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
        return;
      }
      const withBlobs = url.searchParams.get('blobs') === 'true';
      const sha = api[2] === revision ? head : decodeURIComponent(api[2]);
      const siblings = listed
        .map((f) => ({
          rfilename: f.path,
          ...(withBlobs && !switches.noSizes
            ? {
                blobId: gitBlobSha1(f.data),
                size: f.data.length,
                ...(f.lfs ? { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
              }
            : {}),
        }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: opts.repo, sha, siblings }));
      return;
    }
    // the branch name or the commit it points to, like the Hub
    const rev = [revision, ...commits.keys()].find((r) => url.pathname.startsWith(`/${opts.repo}/resolve/${encodeURIComponent(r)}/`));
    const filePath = rev ? decodeURIComponent(url.pathname.slice(`/${opts.repo}/resolve/${encodeURIComponent(rev)}/`.length)) : undefined;
    const file = rev ? filesAt(rev)!.find((f) => f.path === filePath) : undefined;
    const commit = rev === revision ? head : rev;
    if (!file || switches.missing.has(file.path)) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    const wrong = switches.wrongChecksum.has(file.path);
    if (file.lfs) {
      const sum = sha256(file.data);
      res.writeHead(302, {
        location: switches.redirectTo ? switches.redirectTo(sum) : `${cdnOrigin}/blobs/${sum}?name=${encodeURIComponent(file.path)}`,
        ...(switches.noLinkedEtag ? {} : { 'x-linked-etag': `"${wrong ? sha256(Buffer.from('something else')) : sum}"` }),
        ...(switches.noSizes ? {} : { 'x-linked-size': String(file.data.length) }),
        'x-repo-commit': commit!,
        etag: `"${wrong ? sha256(Buffer.from('x')) : sum}"`,
      });
      res.end();
      return;
    }
    sendBody(req, res, file, {
      etag: `"${wrong ? gitBlobSha1(Buffer.from('something else')) : gitBlobSha1(file.data)}"`,
      'x-repo-commit': commit!,
      'content-type': 'application/octet-stream',
    });
  });
  await listen(hub);
  for (const s of [hub, cdn]) s.on('connection', (sock) => (sockets.add(sock), sock.on('close', () => sockets.delete(sock))));

  return {
    endpoint: `http://127.0.0.1:${(hub.address() as AddressInfo).port}`,
    cdnOrigin,
    repo: opts.repo,
    revision,
    get commit() {
      return head;
    },
    files: opts.files,
    moveBranch(files) {
      head = createHash('sha1').update(head + files.map((f) => sha256(f.data)).join()).digest('hex');
      commits.set(head, files);
      for (const f of files) bySha.set(sha256(f.data), f);
      return head;
    },
    switches,
    requests,
    bytesSent: () => sent,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([hub, cdn].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

function listen(server: http.Server | https.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}
