// The `llava.backend = openai` path: questions, geometry for boxes and caption jobs through an
// OpenAI-compatible server (src/remote/) instead of the engine process. Ctx.ask and Ctx.imageGeometry
// hand over to this when the setting says so; the caption command takes its backend from here. The
// API key lives in SecretStorage (LLaVA: Set Remote API Key), never in settings.

import * as vscode from 'vscode';
import { promises as fsp } from 'node:fs';
import type { BoxFrame, ChatTurn, GenerationStats, ImageGeometry, ImageInput, ReferringPrompts } from '../core';
import { ImageDecodeError } from '../core';
import type { CaptionBackend } from '../captioning';
import { RemoteClient, imageSize, remoteCaptionBackend, remoteGeometry } from '../remote';
import { DEFAULT_GROUNDING, type GroundingModelSource } from '../grounding';
import { findEntry, type Catalog } from '../hub';
import { config, remoteConfig } from './config';

export const REMOTE_API_KEY_SECRET = 'llava.remote.apiKey';

export class RemoteBackend {
  constructor(
    private readonly secrets: vscode.SecretStorage,
    private readonly log: vscode.LogOutputChannel,
  ) {}

  get enabled(): boolean {
    return remoteConfig.backend() === 'openai';
  }

  async client(): Promise<RemoteClient> {
    const apiKey = (await this.secrets.get(REMOTE_API_KEY_SECRET)) || undefined;
    return new RemoteClient({ baseUrl: remoteConfig.baseUrl(), model: remoteConfig.model(), apiKey, log: (l) => this.log.warn(l) });
  }

  /** Same result shape as Ctx.ask: the text, stats as far as the server reports them, each image's geometry. */
  async ask(
    turns: ChatTurn[],
    opts: { signal?: AbortSignal; onDelta?: (text: string) => void },
  ): Promise<{ text: string; stats: GenerationStats; provider: string; images?: ImageGeometry[] }> {
    const client = await this.client();
    const temperature = config.temperature();
    const started = performance.now();
    let first: number | undefined;
    const answer = await client.chat(turns, {
      maxNewTokens: config.maxNewTokens(),
      temperature,
      signal: opts.signal,
      onDelta: (t) => {
        first ??= performance.now();
        opts.onDelta?.(t);
      },
    });
    const totalMs = performance.now() - started;
    const decodeMs = first === undefined ? 0 : performance.now() - first;
    const stats: GenerationStats = {
      promptTokens: answer.promptTokens,
      newTokens: answer.newTokens,
      imageTokens: 0,
      timeToFirstTokenMs: (first ?? performance.now()) - started,
      decodeTokensPerSecond: decodeMs > 0 && answer.newTokens > 1 ? ((answer.newTokens - 1) * 1000) / decodeMs : 0,
      totalMs,
      stopReason: answer.finishReason === 'length' ? 'max_tokens' : 'eos',
      tokenIds: [],
    };
    this.log.info(`remote answer from ${remoteConfig.baseUrl()} (${remoteConfig.model()}): ${answer.newTokens} tokens, ${answer.finishReason}, ${Math.round(totalMs)} ms`);
    const images: ImageGeometry[] = [];
    for (const t of turns) for (const image of t.images ?? []) {
      const g = await this.geometry(image).catch(() => undefined);
      if (!g) return { text: answer.text, stats, provider: 'remote' }; // no boxes rather than misplaced ones
      images.push(g);
    }
    return { text: answer.text, stats, provider: 'remote', images };
  }

  /** Where the remote model's input pixels came from, by the configured preprocess mode and the header's size. */
  async geometry(image: ImageInput): Promise<ImageGeometry> {
    const name = 'path' in image ? image.path : (image.name ?? 'image');
    if ('preprocessed' in image) return image.preprocessed.geometry;
    const bytes = 'bytes' in image ? image.bytes : new Uint8Array(await fsp.readFile(image.path));
    const size = imageSize(bytes);
    if (!size || size.width <= 0 || size.height <= 0) throw new ImageDecodeError(name, 'the image size could not be read from its header');
    return remoteGeometry(remoteConfig.preprocess(), size.width, size.height);
  }

  /**
   * Box format of the remote model: `llava.remote.boxFrame` when set, else the catalog entry named by
   * `llava.remote.model`, else LLaVA-1.5's.
   */
  groundingSource(catalog: () => Catalog): GroundingModelSource {
    return {
      log: this.log,
      current: async () => {
        let entry: { boxFrame: BoxFrame; prompts: ReferringPrompts } | undefined;
        try {
          entry = findEntry(catalog(), remoteConfig.model());
        } catch {
          entry = undefined; // not a catalog id: the usual case for a remote server
        }
        const frame = remoteConfig.boxFrame();
        if (frame) return { kind: 'catalog' as const, entry: { boxFrame: frame, prompts: entry?.prompts ?? DEFAULT_GROUNDING.prompts } };
        return entry ? { kind: 'catalog' as const, entry } : { kind: 'invalid' as const };
      },
    };
  }

  async captionBackend(): Promise<CaptionBackend> {
    return remoteCaptionBackend(await this.client());
  }
}
