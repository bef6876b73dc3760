// Ctrl+C and SIGTERM for the subcommands that run the model. The first signal aborts the work
// (a caption job stops between images and keeps what it wrote; an answer stops within one token);
// work that cannot hear the signal (a native call, a model still loading) gets `graceMs`, then the
// process exits 130 anyway. A second signal exits at once. A user must never have to kill -9 us.

export function onInterrupt(controller: AbortController, graceMs = 2000): () => void {
  let count = 0;
  const handler = (sig: NodeJS.Signals) => {
    count++;
    if (count > 1) process.exit(130);
    process.stderr.write(`\nllava: ${sig}: stopping (again to quit at once)\n`);
    controller.abort();
    setTimeout(() => process.exit(130), graceMs).unref();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
