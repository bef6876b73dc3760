// Caption jobs through a remote server: the job's batch of N images becomes N concurrent requests
// (the server batches or queues them), each answered on its own; results are yielded as they arrive,
// so the job runner writes each caption (atomically, one manifest record) as soon as it exists. A
// request that fails after its retries is that image's failure, recorded and redone by a rerun.

import { promises as fsp } from 'node:fs';
import { ImageDecodeError, ImageTooLargeError, type ImageInput } from '../core';
import type { CaptionBackend, CaptionItem, CaptionResult, CaptionSampling } from '../captioning';
import type { RemoteClient } from './client';
import { sniffImageType } from './images';

export function remoteCaptionBackend(client: RemoteClient, opts: { maxImageBytes?: number } = {}): CaptionBackend {
  const maxBytes = opts.maxImageBytes ?? 64 * 1024 * 1024;
  return {
    model: client.opts.model,
    variant: 'remote',
    // read ahead by the job's prefetch; the header is checked here so a non-image never costs a request
    async prepare(imagePath: string): Promise<ImageInput> {
      const s = await fsp.stat(imagePath).catch(() => undefined);
      if (!s?.isFile()) throw new ImageDecodeError(imagePath, s ? 'not a regular file' : 'no such file');
      if (s.size > maxBytes) throw new ImageTooLargeError(imagePath, `${s.size} bytes is over the ${maxBytes} byte limit`);
      const bytes = new Uint8Array(await fsp.readFile(imagePath));
      if (!sniffImageType(bytes)) throw new ImageDecodeError(imagePath, bytes.length ? 'not a recognised image format' : 'empty file');
      return { bytes, name: imagePath };
    },
    async *captionBatch(items: CaptionItem[], s: CaptionSampling): AsyncIterable<CaptionResult> {
      const pending = new Map<number, Promise<CaptionResult>>();
      items.forEach((it, index) => {
        const request = client
          .chat([{ role: 'user', text: it.prompt, images: [it.image] }], { maxNewTokens: s.maxNewTokens, temperature: s.temperature, seed: s.seed, signal: s.signal })
          .then(
            (a): CaptionResult => ({ index, text: a.text, seconds: a.seconds }),
            (error: Error): CaptionResult => ({ index, error }),
          );
        pending.set(index, request);
      });
      while (pending.size) {
        const result = await Promise.race(pending.values());
        pending.delete(result.index);
        yield result;
      }
    },
  };
}
