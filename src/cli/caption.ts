// `llava caption`: batch captioning of image files and folders into sidecars, JSONL or CSV; a rerun
// resumes. Progress is one updating line on a terminal, JSON lines otherwise.

import * as path from 'node:path';
import {
  checkSidecarExt,
  describeIgnored,
  modelCaptionBackend,
  scanImagePaths,
  runCaptionJob,
  type CaptionOutput,
  type CaptionPreset,
  type CaptionProgress,
  type ExistingPolicy,
} from '../captioning';
import { int, oneOf, parse, UsageError, type CliCommand } from './args';
import { onInterrupt } from './interrupt';
import { MODEL_OPTIONS, MODEL_USAGE, openModel } from './model';

const USAGE = `Usage: llava caption PATH... --model DIR|ID|OWNER/REPO [options]
PATHs are image files or folders (searched recursively).

${MODEL_USAGE}
  --preset short|detailed|alt|tags|custom   (default short); custom needs --prompt
  --prompt "..."                        placeholders: {name} (file name without extension), {folder}, {existing}
  --prefix "..."                        start every caption with this text
  --out sidecar|jsonl|csv               sidecar: name.txt next to each image (default)
  --manifest FILE                       JSONL/CSV file (default captions.jsonl / captions.csv in the current
                                        folder); with --out sidecar an optional report (.jsonl or .csv)
  --ext .txt                            sidecar extension
  --existing skip|overwrite|append      images already captioned (default skip: a rerun resumes)
  --batch N                             images decoded together (default 4)
  --max-new-tokens N                    (default 64)
  --temperature T --seed S              sampling (default greedy)
Progress: one updating line on a terminal, JSON lines otherwise (progress, image, summary).
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...MODEL_OPTIONS,
      preset: { type: 'string' },
      prompt: { type: 'string' },
      prefix: { type: 'string' },
      out: { type: 'string', default: 'sidecar' },
      manifest: { type: 'string' },
      ext: { type: 'string', default: '.txt' },
      existing: { type: 'string', default: 'skip' },
      batch: { type: 'string', default: '4' },
      'max-new-tokens': { type: 'string', default: '64' },
      temperature: { type: 'string' },
      seed: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.model) throw new UsageError('--model is required', USAGE);
  if (!positionals.length) throw new UsageError('give at least one image file or folder', USAGE);
  // --prompt alone means the custom preset
  const preset = oneOf<CaptionPreset>('preset', values.preset ?? (values.prompt ? 'custom' : 'short'), ['short', 'detailed', 'alt', 'tags', 'custom'], USAGE);
  if (preset === 'custom' && !values.prompt) throw new UsageError('--preset custom needs --prompt "..."', USAGE);
  if (values.prompt && preset !== 'custom') throw new UsageError('--prompt goes with --preset custom', USAGE);
  const out = oneOf<CaptionOutput>('out', values.out!, ['sidecar', 'jsonl', 'csv'], USAGE);
  const existing = oneOf<ExistingPolicy>('existing', values.existing!, ['skip', 'overwrite', 'append'], USAGE);
  const manifest = values.manifest ?? (out === 'sidecar' ? undefined : path.resolve(`captions.${out}`));
  const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
  if (!(temperature >= 0)) throw new UsageError('--temperature must be a number >= 0', USAGE);
  const batchSize = int('batch', values.batch, 1, USAGE);
  const maxNewTokens = int('max-new-tokens', values['max-new-tokens'], 1, USAGE);
  const seed = int('seed', values.seed, 0, USAGE);
  try {
    checkSidecarExt(values.ext!);
  } catch (err) {
    throw new UsageError((err as Error).message, USAGE);
  }

  // nothing is opened here: FIFOs, devices, dangling links and links out of the folder are decided by stat
  const scan = await scanImagePaths(positionals);
  const images = scan.images;
  const tty = !!process.stdout.isTTY;
  const emit = (obj: Record<string, unknown>) => process.stdout.write(JSON.stringify(obj) + '\n');
  const controller = new AbortController();
  const stopListening = onInterrupt(controller);
  const model = await openModel(values, USAGE);
  const progress = new ProgressLine();
  try {
    const summary = await runCaptionJob(modelCaptionBackend(model), {
      images, roots: scan.roots, refused: scan.refused, skippedFiles: scan.skipped, preset, prompt: values.prompt, prefix: values.prefix, output: out, manifest, ext: values.ext, existing,
      batchSize, maxNewTokens, temperature, seed, signal: controller.signal,
      onProgress: (p) => (tty ? progress.show(p) : emit({ event: 'progress', ...p, imagesPerMinute: Math.round(p.imagesPerMinute * 10) / 10 })),
      onImage: (r) => {
        if (!tty) emit({ event: 'image', ...r });
        else if (!r.ok) progress.above(`  failed: ${r.path}: ${r.error}`);
      },
    });
    if (tty) {
      progress.clear();
      process.stdout.write(
        `${summary.cancelled ? 'Cancelled' : 'Done'}: ${summary.captioned} captioned, ${summary.skipped} skipped, ${summary.failed.length} failed ` +
          `of ${images.length + scan.refused.length} images in ${summary.seconds.toFixed(1)} s (${summary.imagesPerMinute.toFixed(1)} img/min)` +
          `${summary.manifest ? `; manifest ${summary.manifest}` : ''}\n` +
          `${Object.keys(summary.ignored).length ? `Not taken from the folders: ${describeIgnored(summary.ignored)}\n` : ''}`,
      );
    } else emit({ event: 'summary', images: images.length + scan.refused.length, ...summary });
    return summary.cancelled ? 130 : summary.failed.length ? 1 : 0;
  } finally {
    stopListening();
    await model.dispose();
  }
}

/** One terminal line rewritten in place with the job's progress. */
class ProgressLine {
  private width = 0;

  show(p: CaptionProgress): void {
    const eta = p.etaSeconds === undefined ? '--' : `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s`;
    const cur = p.current.length ? path.basename(p.current[0]) + (p.current.length > 1 ? ` +${p.current.length - 1}` : '') : '';
    const text = `[${p.done}/${p.total}] ${p.imagesPerMinute.toFixed(1)} img/min, ETA ${eta}, ${p.failed} failed, ${p.skipped} skipped  ${cur}`;
    const cols = process.stdout.columns || 100;
    process.stdout.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(this.width, cols - 1))}`);
    this.width = Math.min(text.length, cols - 1);
  }

  /** a line printed above the progress line */
  above(line: string): void {
    this.clear();
    process.stdout.write(`${line}\n`);
  }

  clear(): void {
    process.stdout.write(`\r${' '.repeat(this.width)}\r`);
  }
}

export const captionCommand: CliCommand = { name: 'caption', summary: 'caption many images into sidecars, JSONL or CSV (resumable)', usage: USAGE, run };
