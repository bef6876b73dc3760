// The `llava` command line (a program: nothing imports it), over the same engine the extension uses,
// in-process. Uses the doors of core, engine, captioning and hub; never vscode.
//   llava ask  --model DIR --image PATH [--image PATH...] [options] "question"
//   llava info --model DIR
//   llava caption PATH... --model DIR [options]   (batch captioning: sidecars, JSONL or CSV; resumable)
import { parseArgs } from 'node:util';
import * as path from 'node:path';
import { expandImagePaths, runCaptionJob, type CaptionOutput, type CaptionPreset, type CaptionProgress, type ExistingPolicy } from '../captioning';
import { modelCaptionBackend } from '../captioning';
import { EngineError, loadModel, type ExecutionProviderChoice, type DtypeVariant } from '../engine';
import { readModelFolder, chooseVariants } from '../engine';

const USAGE = `Usage:
  llava ask --model DIR --image PATH [--image PATH ...] [options] "question"
  llava info --model DIR
  llava caption PATH... --model DIR [caption options]

Options for ask:
  --provider auto|cuda|dml|coreml|cpu   execution provider (default auto: GPU if it loads, else CPU)
  --variant fp32|fp16|q4|q4f16|int8|... ONNX weight variant (default: chosen per provider)
  --threads N                           CPU threads (default: ONNX Runtime's choice)
  --max-new-tokens N                    (default 256)
  --temperature T --top-k K --top-p P --repetition-penalty R --seed S   sampling (default greedy)
  --json                                print one JSON object: text, token ids, timings, provider
  --verbose                             log loading steps to stderr

Options for caption (PATHs: image files or folders, searched recursively):
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
  --provider, --variant, --threads      as for ask
Progress: one updating line on a terminal, JSON lines otherwise (progress, image, summary).
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'caption') return caption(rest);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
      image: { type: 'string', multiple: true },
      provider: { type: 'string', default: 'auto' },
      variant: { type: 'string' },
      threads: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !command) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (!values.model) throw new UsageError('--model DIR is required');
  const num = (v: string | undefined) => (v === undefined ? undefined : Number(v));

  if (command === 'info') {
    const spec = await readModelFolder(values.model);
    const cpu = chooseVariants(spec, 'cpu');
    process.stdout.write(
      JSON.stringify(
        {
          dir: spec.dir,
          modelType: spec.modelType,
          text: spec.text,
          imageTokenId: spec.imageTokenId,
          preprocess: spec.preprocess,
          promptFormat: spec.chatTemplate ? 'chat_template' : spec.promptFormat,
          eosTokenIds: spec.generation.eosTokenIds,
          variants: spec.onnx,
          cpuDefault: cpu,
        },
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  if (command !== 'ask') throw new UsageError(`unknown command "${command}"`);
  const question = positionals.join(' ').trim();
  if (!question) throw new UsageError('a question is required');
  if (!values.image?.length) throw new UsageError('--image PATH is required');

  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const model = await loadModel(values.model, {
    provider: values.provider as ExecutionProviderChoice,
    variant: values.variant as DtypeVariant | undefined,
    threads: num(values.threads),
    log: values.verbose ? (l) => process.stderr.write(`[llava] ${l}\n`) : undefined,
  });
  if (model.info.fallbackReason) process.stderr.write(`[llava] using ${model.info.provider}: ${model.info.fallbackReason}\n`);
  try {
    const turns = [{ role: 'user' as const, text: question, images: values.image.map((p) => ({ path: p })) }];
    for await (const ev of model.generate(turns, {
      maxNewTokens: num(values['max-new-tokens']),
      temperature: num(values.temperature),
      topK: num(values['top-k']),
      topP: num(values['top-p']),
      repetitionPenalty: num(values['repetition-penalty']),
      seed: num(values.seed),
      signal: controller.signal,
    })) {
      if (ev.type === 'delta' && !values.json) process.stdout.write(ev.text);
      if (ev.type === 'done') {
        if (values.json) {
          process.stdout.write(JSON.stringify({ text: ev.text, provider: model.info.provider, fallbackReason: model.info.fallbackReason, variants: model.info.variants, loadMs: model.info.loadMs, ...ev.stats }) + '\n');
        } else {
          process.stdout.write('\n');
          if (values.verbose) process.stderr.write(`[llava] ${ev.stats.newTokens} tokens, first after ${ev.stats.timeToFirstTokenMs.toFixed(0)} ms, ${ev.stats.decodeTokensPerSecond.toFixed(1)} tokens/s (${ev.stats.stopReason})\n`);
        }
      }
    }
  } finally {
    await model.dispose();
  }
  return 0;
}

async function caption(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      model: { type: 'string' },
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
      provider: { type: 'string', default: 'auto' },
      variant: { type: 'string' },
      threads: { type: 'string' },
      verbose: { type: 'boolean', default: false },
    },
  });
  const oneOf = <T extends string>(name: string, v: string, allowed: readonly T[]): T => {
    if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`);
    return v as T;
  };
  const int = (name: string, v: string | undefined, min: number): number | undefined => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}`);
    return n;
  };
  if (!values.model) throw new UsageError('--model DIR is required');
  if (!positionals.length) throw new UsageError('give at least one image file or folder');
  // --prompt alone means the custom preset
  const preset = oneOf<CaptionPreset>('preset', values.preset ?? (values.prompt ? 'custom' : 'short'), ['short', 'detailed', 'alt', 'tags', 'custom']);
  if (preset === 'custom' && !values.prompt) throw new UsageError('--preset custom needs --prompt "..."');
  if (values.prompt && preset !== 'custom') throw new UsageError('--prompt goes with --preset custom');
  const out = oneOf<CaptionOutput>('out', values.out!, ['sidecar', 'jsonl', 'csv']);
  const existing = oneOf<ExistingPolicy>('existing', values.existing!, ['skip', 'overwrite', 'append']);
  const manifest = values.manifest ?? (out === 'sidecar' ? undefined : path.resolve(`captions.${out}`));
  const temperature = values.temperature === undefined ? 0 : Number(values.temperature);
  if (!(temperature >= 0)) throw new UsageError('--temperature must be a number >= 0');

  const images = await expandImagePaths(positionals);
  const tty = !!process.stdout.isTTY;
  const emit = (obj: Record<string, unknown>) => process.stdout.write(JSON.stringify(obj) + '\n');
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  process.once('SIGTERM', () => controller.abort());
  const model = await loadModel(values.model, {
    provider: values.provider as ExecutionProviderChoice,
    variant: values.variant as DtypeVariant | undefined,
    threads: int('threads', values.threads, 0),
    log: values.verbose ? (l) => process.stderr.write(`[llava] ${l}\n`) : undefined,
  });
  if (model.info.fallbackReason) process.stderr.write(`[llava] using ${model.info.provider}: ${model.info.fallbackReason}\n`);
  let lastLine = 0;
  const line = (p: CaptionProgress) => {
    const eta = p.etaSeconds === undefined ? '--' : `${Math.floor(p.etaSeconds / 60)}m${String(Math.round(p.etaSeconds % 60)).padStart(2, '0')}s`;
    const cur = p.current.length ? path.basename(p.current[0]) + (p.current.length > 1 ? ` +${p.current.length - 1}` : '') : '';
    const text = `[${p.done}/${p.total}] ${p.imagesPerMinute.toFixed(1)} img/min, ETA ${eta}, ${p.failed} failed, ${p.skipped} skipped  ${cur}`;
    const cols = process.stdout.columns || 100;
    process.stdout.write(`\r${text.slice(0, cols - 1).padEnd(Math.min(lastLine, cols - 1))}`);
    lastLine = Math.min(text.length, cols - 1);
  };
  try {
    const summary = await runCaptionJob(modelCaptionBackend(model), {
      images, preset, prompt: values.prompt, prefix: values.prefix, output: out, manifest, ext: values.ext, existing,
      batchSize: int('batch', values.batch, 1), maxNewTokens: int('max-new-tokens', values['max-new-tokens'], 1),
      temperature, seed: int('seed', values.seed, 0), signal: controller.signal,
      onProgress: (p) => (tty ? line(p) : emit({ event: 'progress', ...p, imagesPerMinute: Math.round(p.imagesPerMinute * 10) / 10 })),
      onImage: (r) => {
        if (!tty) emit({ event: 'image', ...r });
        else if (!r.ok) process.stdout.write(`\r${' '.repeat(lastLine)}\r  failed: ${r.path}: ${r.error}\n`);
      },
    });
    if (tty) {
      process.stdout.write(`\r${' '.repeat(lastLine)}\r`);
      process.stdout.write(
        `${summary.cancelled ? 'Cancelled' : 'Done'}: ${summary.captioned} captioned, ${summary.skipped} skipped, ${summary.failed.length} failed ` +
          `of ${images.length} images in ${summary.seconds.toFixed(1)} s (${summary.imagesPerMinute.toFixed(1)} img/min)` +
          `${summary.manifest ? `; manifest ${summary.manifest}` : ''}\n`,
      );
    } else emit({ event: 'summary', images: images.length, ...summary });
    return summary.cancelled ? 130 : summary.failed.length ? 1 : 0;
  } finally {
    await model.dispose();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) {
      process.stderr.write(`llava: ${err.message}\n\n${USAGE}`);
      process.exit(2);
    }
    const message = err instanceof EngineError ? `${err.name}: ${err.message}` : err instanceof Error ? (err.stack ?? err.message) : String(err);
    process.stderr.write(`llava: ${message}\n`);
    process.exit(1);
  },
);
