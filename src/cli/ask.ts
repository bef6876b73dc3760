// `llava ask`: one question about one or more images, the answer streamed to stdout.

import { stat } from 'node:fs/promises';
import { num, int, parse, UsageError, type CliCommand } from './args';
import { MODEL_OPTIONS, MODEL_USAGE, openModel } from './model';

const USAGE = `Usage: llava ask --model DIR|ID|OWNER/REPO --image PATH [--image PATH ...] [options] "question"

${MODEL_USAGE}
  --max-new-tokens N                    the longest answer in tokens (default 256)
  --temperature T --top-k K --top-p P --repetition-penalty R --seed S   sampling (default greedy)
  --json                                print one JSON object: text, token ids, timings, provider
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      ...MODEL_OPTIONS,
      image: { type: 'string', multiple: true },
      'max-new-tokens': { type: 'string' },
      temperature: { type: 'string' },
      'top-k': { type: 'string' },
      'top-p': { type: 'string' },
      'repetition-penalty': { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    USAGE,
  );
  if (values.help) return help();
  if (!values.model) throw new UsageError('--model is required', USAGE);
  const question = positionals.join(' ').trim();
  if (!question) throw new UsageError('a question is required', USAGE);
  if (!values.image?.length) throw new UsageError('--image PATH is required', USAGE);
  const sampling = {
    maxNewTokens: int('max-new-tokens', values['max-new-tokens'], 1, USAGE),
    temperature: num('temperature', values.temperature, USAGE),
    topK: int('top-k', values['top-k'], 0, USAGE),
    topP: num('top-p', values['top-p'], USAGE),
    repetitionPenalty: num('repetition-penalty', values['repetition-penalty'], USAGE),
    seed: int('seed', values.seed, 0, USAGE),
  };
  // a missing image is said before the model spends seconds loading
  for (const p of values.image) {
    const s = await stat(p).catch(() => undefined);
    if (!s) throw new Error(`${p}: no such file`);
    if (!s.isFile()) throw new Error(`${p}: not a regular file`);
  }

  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const model = await openModel(values, USAGE);
  try {
    const turns = [{ role: 'user' as const, text: question, images: values.image.map((p) => ({ path: p })) }];
    for await (const ev of model.generate(turns, { ...sampling, signal: controller.signal })) {
      if (ev.type === 'delta' && !values.json) process.stdout.write(ev.text);
      if (ev.type !== 'done') continue;
      if (values.json) {
        const { provider, fallbackReason, variants, loadMs } = model.info;
        process.stdout.write(JSON.stringify({ text: ev.text, provider, fallbackReason, variants, loadMs, ...ev.stats }) + '\n');
      } else {
        process.stdout.write('\n');
        const s = ev.stats;
        if (values.verbose) process.stderr.write(`[llava] ${s.newTokens} tokens, first after ${s.timeToFirstTokenMs.toFixed(0)} ms, ${s.decodeTokensPerSecond.toFixed(1)} tokens/s (${s.stopReason})\n`);
      }
    }
  } finally {
    await model.dispose();
  }
  return 0;
}

function help(): number {
  process.stdout.write(USAGE);
  return 0;
}

export const askCommand: CliCommand = { name: 'ask', summary: 'ask a question about one or more images', usage: USAGE, run };
