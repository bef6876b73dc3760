// Model text into the Chat view's Markdown: untrusted, so no raw HTML and no images (a Markdown image
// would make the renderer fetch a URL the model chose). Streamed deltas can split `![` across two
// pieces, so a trailing `!` waits for the next delta.

export class SafeMarkdown {
  private held = '';

  constructor(private readonly emit: (markdown: string) => void) {}

  /** `<` and `>` and an image's `![` are escaped; everything else is the model's Markdown. */
  static escape(text: string): string {
    return text.replace(/[<>]/g, (c) => `\\${c}`).replace(/!\[/g, '!\\[');
  }

  push(delta: string): void {
    let text = this.held + delta;
    this.held = '';
    if (text.endsWith('!')) {
      this.held = '!';
      text = text.slice(0, -1);
    }
    if (text) this.emit(SafeMarkdown.escape(text));
  }

  end(): void {
    if (this.held) this.emit(this.held);
    this.held = '';
  }
}
