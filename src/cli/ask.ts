// `llava ask`: one question about one or more images, the answer streamed to stdout.

import { explicitRoot } from '../captioning';
import { checkRegularFile } from '../files';
import { num, int, parse, UsageError, type CliCommand } from './args';
import { onInterrupt } from './interrupt';
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
  // a missing image, a FIFO, a device or a link leaving the image's folder is said before the model
  // spends seconds loading (the engine checks again when it reads: the file may change meanwhile)
  // (a link must stay inside the current folder when named inside it, else inside its own folder)
  for (const p of values.image) await checkRegularFile(p, { root: explicitRoot(p), maxBytes: Number.MAX_SAFE_INTEGER, name: p });

  const controller = new AbortController();
  const stopListening = onInterrupt(controller);
  const model = await openModel(values, USAGE);
  try {
    const images = values.image.map((p) => ({ path: p, root: explicitRoot(p) }));
    const turns = [{ role: 'user' as const, text: question, images }];
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
    stopListening();
    await model.dispose();
  }
  return controller.signal.aborted ? 130 : 0;
}

function help(): number {
  process.stdout.write(USAGE);
  return 0;
}

export const askCommand: CliCommand = { name: 'ask', summary: 'ask a question about one or more images', usage: USAGE, run };
