// Streamed answer text batched for the webview: the host receives one delta per token from the engine
// and posting each one made the webview trail fast models by seconds (and Stop look slow, as queued
// tokens kept arriving after it). Deltas are joined and posted at most once per `intervalMs` (about a
// frame); `flush()` before the final message, `discard()` when the answer is stopped. vscode-free.

export class DeltaCoalescer {
  private buffer = '';
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly post: (text: string) => void,
    private readonly intervalMs = 30,
  ) {}

  push(text: string): void {
    if (!text) return;
    this.buffer += text;
    this.timer ??= setTimeout(() => this.flush(), this.intervalMs);
  }

  /** Posts what is waiting now. */
  flush(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buffer) return;
    const text = this.buffer;
    this.buffer = '';
    this.post(text);
  }

  /** Drops what is waiting (the answer was stopped: nothing more is shown). */
  discard(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.buffer = '';
  }
}
