// `llava` command line over the same engine the extension uses, in-process.
//   llava ask  --model DIR --image PATH [--image PATH...] [options] "question"
//   llava info --model DIR
import { parseArgs } from 'node:util';
import { EngineError, loadModel, type ExecutionProviderChoice, type DtypeVariant } from './engine/index';
import { readModelFolder, chooseVariants } from './engine/modelFolder';

const USAGE = `Usage:
  llava ask --model DIR --image PATH [--image PATH ...] [options] "question"
  llava info --model DIR

Options for ask:
  --provider auto|cuda|dml|coreml|cpu   execution provider (default auto: GPU if it loads, else CPU)
  --variant fp32|fp16|q4|q4f16|int8|... ONNX weight variant (default: chosen per provider)
  --threads N                           CPU threads (default: ONNX Runtime's choice)
  --max-new-tokens N                    (default 256)
  --temperature T --top-k K --top-p P --repetition-penalty R --seed S   sampling (default greedy)
  --json                                print one JSON object: text, token ids, timings, provider
  --verbose                             log loading steps to stderr
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
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
