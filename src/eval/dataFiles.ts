// Reading evaluation data: the files are untrusted input (downloaded benchmarks, hand-edited sets),
// so each is a regular file of bounded size, parsed with an error that names the file (and line),
// and every image path must stay inside the data folder.

import { readFile, stat } from 'node:fs/promises';
import * as path from 'node:path';
import { EvalDataError } from '../core';

/** ScienceQA's problems.json is ~35 MB; anything far beyond is not an evaluation file. */
export const MAX_DATA_BYTES = 128 * 1024 * 1024;

export async function readDataText(file: string, maxBytes = MAX_DATA_BYTES): Promise<string> {
  const s = await stat(file).catch(() => undefined);
  if (!s) throw new EvalDataError(file, 'no such file');
  if (!s.isFile()) throw new EvalDataError(file, 'not a regular file');
  if (s.size > maxBytes) throw new EvalDataError(file, `${s.size} bytes is more than the ${maxBytes} an evaluation file may have`);
  return readFile(file, 'utf8');
}

export async function readJson(file: string): Promise<unknown> {
  const text = await readDataText(file);
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new EvalDataError(file, `not JSON (${(err as Error).message})`);
  }
}

/** One JSON object per non-empty line. */
export async function readJsonl(file: string): Promise<Record<string, unknown>[]> {
  const lines = (await readDataText(file)).split('\n');
  const out: Record<string, unknown>[] = [];
  lines.forEach((line, i) => {
    if (!line.trim()) return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch (err) {
      throw new EvalDataError(file, `line ${i + 1} is not JSON (${(err as Error).message})`);
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new EvalDataError(file, `line ${i + 1} is not a JSON object`);
    out.push(v as Record<string, unknown>);
  });
  return out;
}

/** A path named by a data file, resolved inside `root`; a path that leaves it is an error. */
export function dataPath(root: string, rel: string, file: string): string {
  const full = path.resolve(root, rel);
  const base = path.resolve(root);
  if (full !== base && !full.startsWith(base + path.sep)) throw new EvalDataError(file, `image path ${JSON.stringify(rel)} leaves the data folder`);
  return full;
}

export function str(o: Record<string, unknown>, key: string, file: string, where: string): string {
  const v = o[key];
  if (typeof v !== 'string') throw new EvalDataError(file, `${where}: "${key}" must be a string`);
  return v;
}

export function optStr(o: Record<string, unknown>, key: string): string {
  const v = o[key];
  return typeof v === 'string' ? v : '';
}

/** One line of a question file, for the loader that reads its own fields from it. */
export interface QuestionLine {
  o: Record<string, unknown>;
  str(key: string): string;
  optStr(key: string): string;
  /** an EvalDataError naming the file and line */
  fail(message: string): never;
}

/**
 * The items of a JSONL question file: every line's `question_id`, `image` (resolved inside the data
 * folder) and `text`, plus whatever `more` reads from the same line.
 */
export async function readQuestions<T extends object>(file: string, more: (line: QuestionLine) => T): Promise<({ id: string; image: string; text: string } & T)[]> {
  const dir = path.dirname(file);
  return (await readJsonl(file)).map((o, i) => {
    const where = `line ${i + 1}`;
    const line: QuestionLine = {
      o,
      str: (key) => str(o, key, file, where),
      optStr: (key) => optStr(o, key),
      fail: (message) => {
        throw new EvalDataError(file, `${where}: ${message}`);
      },
    };
    return { id: line.str('question_id'), image: dataPath(dir, line.str('image'), file), text: line.str('text'), ...more(line) };
  });
}
