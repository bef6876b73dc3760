// Requests wait in one bounded queue; whenever the model is free, the oldest request and up to
// `maxBatch - 1` others with the same sampling settings are decoded together through generateBatch
// (greedy rows give exactly what generate() would). Each row streams its own deltas to its own
// client. A client that goes away drops out (its row's output is ignored); a batch whose clients are
// all gone is aborted. A full queue is a 429, not an ever-growing backlog.

import { AbortedError, type GenerationStats } from '../core';
import type { BatchEvent, BatchRequest } from '../engine';
import { ApiError } from './errors';

/** What the scheduler needs of a model (LlavaModel satisfies it). */
export interface BatchModel {
  generateBatch(requests: BatchRequest[], opts?: { maxNewTokens?: number; temperature?: number; topP?: number; repetitionPenalty?: number; signal?: AbortSignal }): AsyncIterable<BatchEvent>;
}

export interface Sampling {
  temperature?: number;
  topP?: number;
  repetitionPenalty?: number;
}

export interface Job {
  request: BatchRequest;
  sampling: Sampling;
  signal: AbortSignal;
  onDelta(text: string): void;
}

export interface JobResult {
  text: string;
  stats: GenerationStats;
}

interface Pending extends Job {
  key: string;
  resolve(r: JobResult): void;
  reject(e: Error): void;
  settled: boolean;
}

export class Scheduler {
  private readonly queue: Pending[] = [];
  private running: Promise<void> | undefined;
  private batchesRun = 0;

  constructor(
    private readonly model: BatchModel,
    private readonly opts: { maxBatch: number; maxQueue: number; defaultMaxTokens: number },
  ) {}

  /** requests waiting (not yet decoding) */
  get waiting(): number {
    return this.queue.length;
  }

  get batches(): number {
    return this.batchesRun;
  }

  get busy(): boolean {
    return this.running !== undefined;
  }

  submit(job: Job): Promise<JobResult> {
    if (this.queue.length >= this.opts.maxQueue) {
      return Promise.reject(new ApiError(429, `the server is busy (${this.queue.length} requests waiting); retry later`, 'rate_limit_error', 'queue_full'));
    }
    return new Promise<JobResult>((resolve, reject) => {
      const s = job.sampling;
      const p: Pending = { ...job, key: `${s.temperature ?? 0}|${s.topP ?? 1}|${s.repetitionPenalty ?? 1}`, resolve, reject, settled: false };
      job.signal.addEventListener('abort', () => settle(p, undefined, new AbortedError('the client went away')), { once: true });
      this.queue.push(p);
      this.pump();
    });
  }

  /** Resolves when nothing is queued or decoding. */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private pump(): void {
    if (this.running) return;
    // drop requests whose clients left while they waited
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i].settled) this.queue.splice(i, 1);
    const head = this.queue[0];
    if (!head) return;
    const batch = this.queue.filter((p) => p.key === head.key).slice(0, this.opts.maxBatch);
    for (const p of batch) this.queue.splice(this.queue.indexOf(p), 1);
    this.running = this.run(batch).finally(() => {
      this.running = undefined;
      this.pump();
    });
  }

  private async run(batch: Pending[]): Promise<void> {
    this.batchesRun++;
    const controller = new AbortController();
    const onAbort = () => {
      if (batch.every((p) => p.settled)) controller.abort();
    };
    for (const p of batch) p.signal.addEventListener('abort', onAbort, { once: true });
    const { temperature, topP, repetitionPenalty } = batch[0].sampling;
    try {
      const events = this.model.generateBatch(
        batch.map((p) => ({ ...p.request, maxNewTokens: p.request.maxNewTokens ?? this.opts.defaultMaxTokens })),
        { temperature, topP, repetitionPenalty, maxNewTokens: this.opts.defaultMaxTokens, signal: controller.signal },
      );
      for await (const ev of events) {
        const p = batch[ev.index];
        if (!p || p.settled) continue;
        if (ev.type === 'delta') p.onDelta(ev.text);
        else if (ev.type === 'done') settle(p, { text: ev.text, stats: ev.stats });
        else settle(p, undefined, ev.error);
      }
      for (const p of batch) settle(p, undefined, new Error('the model ended without an answer'));
    } catch (err) {
      for (const p of batch) settle(p, undefined, err as Error);
    } finally {
      for (const p of batch) p.signal.removeEventListener('abort', onAbort);
    }
  }
}

function settle(p: Pending, result?: JobResult, error?: Error): void {
  if (p.settled) return;
  p.settled = true;
  if (result) p.resolve(result);
  else p.reject(error ?? new Error('no result'));
}
