// A local stand-in for the Hugging Face Hub, bound to 127.0.0.1 on free ports, for download and
// pin tests. It mimics what downloadModel and pin-catalog rely on:
//   GET /{repo}/resolve/{rev}/{path}   non-LFS: 200 with ETag = git blob id, X-Repo-Commit
//                                      LFS:     302 to the "CDN" (a second server, another host:port)
//                                               with X-Linked-Etag = sha256, X-Linked-Size
//   GET /blobs/{sha256}                the CDN: Range -> 206 + Content-Range, past the end -> 416
//   GET /api/models/{repo}/revision/{rev}?blobs=true   siblings with size, blobId and lfs {sha256,size}
// Switches (mutable between calls) inject the failures the tests need.

import { createHash } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

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
}

export interface FakeHub {
  /** use as `endpoint` */
  endpoint: string;
  cdnOrigin: string;
  repo: string;
  revision: string;
  commit: string;
  files: FakeFile[];
  switches: FakeHubSwitches;
  requests: SeenRequest[];
  /** body bytes sent by both servers */
  bytesSent: () => number;
  close(): Promise<void>;
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function gitBlobSha1(data: Buffer): string {
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

export async function startFakeHub(opts: { repo: string; revision?: string; files: FakeFile[] }): Promise<FakeHub> {
  const revision = opts.revision ?? 'main';
  const commit = createHash('sha1').update(opts.repo + revision).digest('hex');
  const revisions = [revision, commit];
  const switches: FakeHubSwitches = {
    dropOnce: new Set(),
    dropAfterBytes: 1000,
    wrongChecksum: new Set(),
    missing: new Set(),
    ignoreRange: false,
    chunkBytes: 0,
    chunkDelayMs: 0,
  };
  const requests: SeenRequest[] = [];
  let sent = 0;
  const byPath = new Map(opts.files.map((f) => [f.path, f]));
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
  const sendBody = (req: http.IncomingMessage, res: http.ServerResponse, file: FakeFile, headers: http.OutgoingHttpHeaders) => {
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
      res.writeHead(200, { ...headers, 'content-length': size, 'accept-ranges': 'bytes' });
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
      if (at >= body.length) res.end(piece);
      else res.write(piece, () => setTimeout(step, switches.chunkDelayMs));
    };
    step();
  };

  const cdn = http.createServer((req, res) => {
    record('cdn', req);
    const m = /^\/blobs\/([0-9a-f]{64})/.exec(req.url ?? '');
    const file = m ? bySha.get(m[1]) : undefined;
    if (!file) {
      res.writeHead(404).end('no such blob');
      return;
    }
    sendBody(req, res, file, { 'content-type': 'application/octet-stream', etag: `"cdn-${m![1].slice(0, 8)}"` });
  });
  await listen(cdn);
  const cdnOrigin = `http://127.0.0.1:${(cdn.address() as AddressInfo).port}`;

  const hub = http.createServer((req, res) => {
    record('hub', req);
    const url = new URL(req.url ?? '/', 'http://hub');
    const api = /^\/api\/models\/(.+)\/revision\/([^/]+)$/.exec(url.pathname);
    if (api) {
      if (api[1] !== opts.repo || !revisions.includes(decodeURIComponent(api[2]))) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Repository not found"}');
        return;
      }
      const withBlobs = url.searchParams.get('blobs') === 'true';
      const siblings = opts.files
        .filter((f) => !switches.missing.has(f.path))
        .map((f) => ({
          rfilename: f.path,
          ...(withBlobs
            ? {
                blobId: gitBlobSha1(f.data),
                size: f.data.length,
                ...(f.lfs ? { lfs: { sha256: sha256(f.data), size: f.data.length, pointerSize: 134 } } : {}),
              }
            : {}),
        }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id: opts.repo, sha: commit, siblings }));
      return;
    }
    // the branch name or the commit it points to, like the Hub
    const prefix = revisions.map((r) => `/${opts.repo}/resolve/${encodeURIComponent(r)}/`).find((p) => url.pathname.startsWith(p));
    const file = prefix ? byPath.get(decodeURIComponent(url.pathname.slice(prefix.length))) : undefined;
    if (!file || switches.missing.has(file.path)) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'content-type': 'text/plain' }).end('Entry not found');
      return;
    }
    const wrong = switches.wrongChecksum.has(file.path);
    if (file.lfs) {
      const sum = sha256(file.data);
      res.writeHead(302, {
        location: `${cdnOrigin}/blobs/${sum}?name=${encodeURIComponent(file.path)}`,
        'x-linked-etag': `"${wrong ? sha256(Buffer.from('something else')) : sum}"`,
        'x-linked-size': String(file.data.length),
        'x-repo-commit': commit,
        etag: `"${wrong ? sha256(Buffer.from('x')) : sum}"`,
      });
      res.end();
      return;
    }
    sendBody(req, res, file, {
      etag: `"${wrong ? gitBlobSha1(Buffer.from('something else')) : gitBlobSha1(file.data)}"`,
      'x-repo-commit': commit,
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
    commit,
    files: opts.files,
    switches,
    requests,
    bytesSent: () => sent,
    close: async () => {
      for (const s of sockets) s.destroy();
      await Promise.all([hub, cdn].map((s) => new Promise<void>((r) => s.close(() => r()))));
    },
  };
}

function listen(server: http.Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
}
