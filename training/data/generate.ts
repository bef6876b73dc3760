// `npx tsx training/data/generate.ts --out DIR [--count N] [--seed S] [--split NAME] [--wordings] [--llm URL]`:
// writes a training data set (dataset.ts). Deterministic: the same options write the same bytes.
// --llm writes the paper's three types through an OpenAI-compatible endpoint (llm.ts) instead of
// the templates; --llm-model names the model, OPENAI_API_KEY is sent when set.

import { parseArgs } from 'node:util';
import { writeDataset } from './dataset';

/** The scene options a data set gets when only --out, --count and --seed are given (training/recipe.sh: seed 0). */
export const GENERATE_DEFAULTS = { split: 'train', seed: 0, minSide: 200, maxSide: 1200, diagramRate: 0.15 } as const;

const USAGE = `Usage: npx tsx training/data/generate.ts --out DIR [options]
  --count N         images (default 1000)
  --seed S          integer seed (default ${GENERATE_DEFAULTS.seed})
  --split NAME      id prefix and part of every scene's key (default ${GENERATE_DEFAULTS.split}; the held-out set is heldout.ts)
  --min-side PX --max-side PX   longest image side range (default ${GENERATE_DEFAULTS.minSide}-${GENERATE_DEFAULTS.maxSide})
  --diagrams F      fraction of images that are diagrams, coloured boxes joined by arrows (default ${GENERATE_DEFAULTS.diagramRate})
  --answers CASE    short answers written capital ("Red", LLaVA-1.5's; the default) or lower ("red", as the
                    multiple-choice options read)
  --wordings        about half of the template questions put in other wordings of the same question (wordings.ts)
  --llm URL         OpenAI-compatible base URL (e.g. http://127.0.0.1:8000/v1) for the paper's three types
  --llm-model NAME  model name sent to it (default gpt-4)
`;

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      out: { type: 'string' },
      count: { type: 'string', default: '1000' },
      seed: { type: 'string', default: String(GENERATE_DEFAULTS.seed) },
      split: { type: 'string', default: GENERATE_DEFAULTS.split },
      'min-side': { type: 'string', default: String(GENERATE_DEFAULTS.minSide) },
      'max-side': { type: 'string', default: String(GENERATE_DEFAULTS.maxSide) },
      diagrams: { type: 'string', default: String(GENERATE_DEFAULTS.diagramRate) },
      answers: { type: 'string', default: 'capital' },
      wordings: { type: 'boolean', default: false },
      llm: { type: 'string' },
      'llm-model': { type: 'string', default: 'gpt-4' },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help || !values.out) {
    process.stdout.write(USAGE);
    return values.help ? 0 : 2;
  }
  if (values.split === 'heldout' || values.split === 'samples') throw new Error(`--split ${values.split} is reserved (training/data/heldout.ts, training/data/samples.ts)`);
  const ints = ['count', 'seed', 'min-side', 'max-side'].map((k) => {
    const n = Number(values[k as 'count']);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${k} must be a non-negative integer`);
    return n;
  });
  const [count, seed, minSide, maxSide] = ints;
  if (minSide < 16 || maxSide < minSide) throw new Error('--min-side must be >= 16 and <= --max-side');
  const diagramRate = Number(values.diagrams);
  if (!(diagramRate >= 0 && diagramRate <= 1)) throw new Error('--diagrams must be a fraction from 0 to 1');
  if (values.answers !== 'capital' && values.answers !== 'lower') throw new Error('--answers must be capital or lower');
  const started = Date.now();
  const r = await writeDataset({
    out: values.out,
    count,
    seed,
    split: values.split!,
    minSide,
    maxSide,
    diagramRate,
    answerCase: values.answers,
    wordings: values.wordings,
    llm: values.llm ? { url: values.llm, model: values['llm-model']!, apiKey: process.env.OPENAI_API_KEY } : undefined,
    log: (l) => process.stderr.write(`${l}\n`),
  });
  process.stdout.write(`${r.images} images, ${r.samples} samples in ${values.out} (${((Date.now() - started) / 1000).toFixed(1)} s)\n`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`generate: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}
