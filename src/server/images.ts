// `image_url` content parts -> engine ImageInput. Three sources, each bounded:
//   data:image/...;base64,...   always accepted (strict base64, decoded size <= maxImageBytes)
//   file:///abs or /abs         only under the --allow-files folder (real path, regular file, bounded)
//   http(s)://...               only with --allow-remote-images (timeout, image/* content type, bounded)
// Everything else is a 400 naming the field. Pixels are bounded again by the engine's own limits.

import { promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ImageInput } from '../core';
import { ApiError, badRequest } from './errors';

export interface ImagePolicy {
  /** decoded bytes of one image */
  maxImageBytes: number;
  /** a folder whose files may be named by path; undefined: no local files */
  allowFilesDir?: string;
  allowRemoteImages: boolean;
  /** for remote fetches */
  fetchTimeoutMs?: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export async function resolveImage(url: unknown, param: string, policy: ImagePolicy, signal?: AbortSignal): Promise<ImageInput> {
  if (typeof url !== 'string' || url.length === 0) throw badRequest('image_url.url must be a non-empty string', param);
  if (url.startsWith('data:')) return fromDataUrl(url, param, policy);
  if (/^https?:\/\//i.test(url)) {
    if (!policy.allowRemoteImages) {
      throw badRequest('remote image URLs are disabled on this server (start it with --allow-remote-images); send a data: URL', param, 'remote_images_disabled');
    }
    return fromHttp(url, param, policy, signal);
  }
  if (url.startsWith('file:') || path.isAbsolute(url)) return fromFile(url, param, policy);
  throw badRequest('image_url.url must be a data: URL (or an http(s) or file URL where the server allows them)', param, 'unsupported_image_url');
}

function fromDataUrl(url: string, param: string, policy: ImagePolicy): ImageInput {
  const comma = url.indexOf(',');
  const header = comma < 0 ? '' : url.slice(5, comma).toLowerCase();
  if (comma < 0 || !header.endsWith(';base64')) throw badRequest('a data: URL image must be base64 (data:image/png;base64,...)', param, 'invalid_image_url');
  const mime = header.slice(0, -';base64'.length);
  if (!mime.startsWith('image/')) throw badRequest(`a data: URL image must have an image/* type, not "${mime || '(none)'}"`, param, 'invalid_image_url');
  const payload = url.slice(comma + 1).replace(/\s+/g, '');
  // 4 base64 characters carry 3 bytes: check the bound before decoding anything
  if ((payload.length / 4) * 3 > policy.maxImageBytes + 3) throw tooLarge(param, policy);
  if (payload.length === 0 || payload.length % 4 !== 0 || !BASE64.test(payload)) throw badRequest('the data: URL is not valid base64', param, 'invalid_base64');
  return { bytes: new Uint8Array(Buffer.from(payload, 'base64')), name: param };
}

async function fromFile(url: string, param: string, policy: ImagePolicy): Promise<ImageInput> {
  if (!policy.allowFilesDir) throw badRequest('local image files are disabled on this server (start it with --allow-files DIR)', param, 'local_files_disabled');
  let file: string;
  try {
    file = url.startsWith('file:') ? fileURLToPath(url) : url;
  } catch {
    throw badRequest('not a valid file URL', param, 'invalid_image_url');
  }
  const root = await fsp.realpath(policy.allowFilesDir);
  const real = await fsp.realpath(file).catch(() => undefined);
  const inside = real !== undefined && (real === root || real.startsWith(root + path.sep));
  // the same answer whether the file is missing or outside: nothing is said about paths outside the folder
  if (!real || !inside) throw new ApiError(404, `${file}: no such image under the allowed folder`, 'not_found_error', 'image_not_found', param);
  const handle = await fsp.open(real, 'r');
  try {
    const s = await handle.stat();
    if (!s.isFile()) throw badRequest(`${file}: not a regular file`, param, 'invalid_image_url');
    if (s.size > policy.maxImageBytes) throw tooLarge(param, policy);
    return { bytes: new Uint8Array(await handle.readFile()), name: file };
  } finally {
    await handle.close();
  }
}

async function fromHttp(url: string, param: string, policy: ImagePolicy, signal?: AbortSignal): Promise<ImageInput> {
  const timeout = AbortSignal.timeout(policy.fetchTimeoutMs ?? 15_000);
  const res = await fetch(url, { signal: signal ? AbortSignal.any([signal, timeout]) : timeout }).catch((err: Error) => {
    throw badRequest(`could not fetch the image: ${err.message}`, param, 'image_fetch_failed');
  });
  if (!res.ok || !res.body) throw badRequest(`could not fetch the image: HTTP ${res.status}`, param, 'image_fetch_failed');
  const type = (res.headers.get('content-type') ?? '').toLowerCase();
  if (!type.startsWith('image/')) {
    await res.body.cancel();
    throw badRequest(`the URL is not an image (content type "${type}")`, param, 'invalid_image_url');
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    total += chunk.length;
    if (total > policy.maxImageBytes) throw tooLarge(param, policy);
    chunks.push(chunk);
  }
  return { bytes: new Uint8Array(Buffer.concat(chunks)), name: url };
}

function tooLarge(param: string, policy: ImagePolicy): ApiError {
  return new ApiError(413, `the image is larger than this server's limit of ${policy.maxImageBytes} bytes`, 'invalid_request_error', 'image_too_large', param);
}
