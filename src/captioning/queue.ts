// A bounded hand-off between the caption job's prefetch (decode + preprocess the next images) and its
// inference loop: the producer waits when `capacity` items are ready, the consumer waits for a full
// batch (or the end). Bounded so a folder of 100k images never sits decoded in memory.

export class CaptionQueue<T> {
  private readonly items: T[] = [];
  private closed = false;
  private wake: (() => void) | undefined;

  constructor(readonly capacity: number) {}

  /** Waits for room; false when the queue was closed or the signal aborted (the item is dropped). */
  async put(item: T, signal?: AbortSignal): Promise<boolean> {
    while (!this.closed && !signal?.aborted && this.items.length >= this.capacity) await this.waitFor(signal);
    if (this.closed || signal?.aborted) return false;
    this.items.push(item);
    this.notify();
    return true;
  }

  /** Up to `n` items once `n` are ready or the queue is closed; [] when closed and empty, or aborted. */
  async take(n: number, signal?: AbortSignal): Promise<T[]> {
    while (!this.closed && !signal?.aborted && this.items.length < n) await this.waitFor(signal);
    if (signal?.aborted) return [];
    const out = this.items.splice(0, n);
    this.notify();
    return out;
  }

  close(): void {
    this.closed = true;
    this.notify();
  }

  get size(): number {
    return this.items.length;
  }

  private notify(): void {
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  /** One waiter at a time is enough: one producer and one consumer, never both blocked on each other. */
  private waitFor(signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve) => {
      const prev = this.wake;
      const done = () => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.wake = () => {
        prev?.();
        done();
      };
      signal?.addEventListener('abort', done, { once: true });
    });
  }
}
