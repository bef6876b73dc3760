// `llava eval`: the paper's evaluation of a model folder on a data folder (src/eval): ScienceQA-format
// multiple choice, short answers, grounding, and the judged relative score when a judge endpoint is
// given. Tables on stdout, the whole report (every answer) as JSON with --json.

import { stat, writeFile } from 'node:fs/promises';
import { availableTasks, formatReport, modelAnswerer, modelBoxFrame, runEval, TASKS, type EvalTask } from '../eval';
import { int, parse, UsageError, type CliCommand } from './args';
import { MODEL_OPTIONS, MODEL_USAGE, openModel } from './model';

const USAGE = `Usage: llava eval --model DIR --data DIR [options]
DIR of --data holds any of: problems.json + pid_splits.json + images/<split>/<pid>/ (ScienceQA layout),
short_answer.jsonl, grounding.jsonl, bench.jsonl (judged; needs --judge-url).

${MODEL_USAGE}
  --tasks LIST                          comma-separated: ${TASKS.join(',')} (default: every task the folder has files for)
  --split NAME                          ScienceQA split in pid_splits.json (default test)
  --limit N                             only the first N items of each task
  --max-new-tokens N                    answer length for judged questions (default 256)
  --judge-url URL                       OpenAI-compatible base URL of the judge (e.g. http://127.0.0.1:8000/v1)
  --judge-model NAME                    the judge's model name (default gpt-4); OPENAI_API_KEY is sent when set
  --after QUESTION                      ask every question as a follow-up: QUESTION first about the same image, then
                                        the question after it and the model's own answer (a chat's second question)
  --json FILE                           write the whole report (scores and every answer) as JSON
`;

async function run(args: string[]): Promise<number> {
  const { values } = parse(
    args,
    {
      ...MODEL_OPTIONS,
      data: { type: 'string' },
      tasks: { type: 'string' },
      split: { type: 'string', default: 'test' },
      limit: { type: 'string' },
      'max-new-tokens': { type: 'string' },
      'judge-url': { type: 'string' },
      'judge-model': { type: 'string', default: 'gpt-4' },
      json: { type: 'string' },
      after: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.model) throw new UsageError('--model DIR is required', USAGE);
  if (!values.data) throw new UsageError('--data DIR is required', USAGE);
  const s = await stat(values.data).catch(() => undefined);
  if (!s?.isDirectory()) throw new Error(`${values.data}: not a folder`);
  const judge = values['judge-url'] ? { url: values['judge-url'], model: values['judge-model']!, apiKey: process.env.OPENAI_API_KEY } : undefined;
  let tasks: EvalTask[];
  if (values.tasks) {
    tasks = values.tasks.split(',').map((t) => t.trim()) as EvalTask[];
    const unknown = tasks.filter((t) => !TASKS.includes(t));
    if (unknown.length) throw new UsageError(`unknown task ${unknown.join(', ')} (tasks: ${TASKS.join(', ')})`, USAGE);
    if (tasks.includes('judged') && !judge) throw new UsageError('the judged task needs --judge-url', USAGE);
  } else {
    tasks = availableTasks(values.data, !!judge);
    if (!tasks.length) throw new Error(`${values.data}: no evaluation files (problems.json, short_answer.jsonl, grounding.jsonl, bench.jsonl)`);
  }
  const limit = int('limit', values.limit, 1, USAGE);
  const maxNewTokens = int('max-new-tokens', values['max-new-tokens'], 1, USAGE);

  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort());
  const frame = await modelBoxFrame(values.model, (l) => process.stderr.write(`llava: ${l}\n`));
  const model = await openModel(values, USAGE);
  const tty = process.stderr.isTTY;
  try {
    const report = await runEval(modelAnswerer(model, { after: values.after }), {
      data: values.data,
      split: values.split,
      tasks,
      limit,
      frame,
      judge,
      maxNewTokens,
      signal: controller.signal,
      progress: tty ? (task, done, total) => process.stderr.write(`\r${task} ${done}/${total}${done === total ? '\n' : ''}`) : undefined,
    });
    process.stdout.write(formatReport(report));
    if (values.json) await writeFile(values.json, JSON.stringify({ model: values.model, ...report }, null, 1) + '\n');
  } finally {
    await model.dispose();
  }
  return 0;
}

export const evalCommand: CliCommand = { name: 'eval', summary: "evaluate a model the paper's way (multiple choice, short answer, grounding, judged)", usage: USAGE, run };
