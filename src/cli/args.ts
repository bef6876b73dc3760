// Argument parsing shared by the subcommands: node:util's strict parseArgs, with its errors turned
// into one line plus the subcommand's usage (never a stack trace), and typed number/enum readers.

import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A mistake in the command line: printed as one line and the usage, exit code 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** the usage text to print after the message (the subcommand's own, else the overview) */
    readonly usage?: string,
  ) {
    super(message);
  }
}

export type Options = NonNullable<ParseArgsConfig['options']>;

/** Every subcommand takes --help / -h. */
const HELP: Options = { help: { type: 'boolean', short: 'h', default: false } };

export function parse<O extends Options>(args: string[], options: O, usage: string) {
  try {
    return parseArgs({ args, options: { ...HELP, ...options }, allowPositionals: true, strict: true });
  } catch (err) {
    // node's messages name the option and say what is wrong; drop its hint about `--` separators
    const message = (err as Error).message.replace(/\. To specify a positional argument.*$/s, '').replace(/^Unknown option/, 'unknown option');
    throw new UsageError(message, usage);
  }
}

export function oneOf<T extends string>(name: string, v: string, allowed: readonly T[], usage?: string): T {
  if (!(allowed as readonly string[]).includes(v)) throw new UsageError(`--${name} must be one of ${allowed.join(', ')}`, usage);
  return v as T;
}

export function int(name: string, v: string | undefined, min: number, usage?: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}`, usage);
  return n;
}

export function num(name: string, v: string | undefined, usage?: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number`, usage);
  return n;
}

/** A subcommand of `llava`: its name, one line for the overview, its usage, and what it runs. */
export interface CliCommand {
  name: string;
  summary: string;
  usage: string;
  /** resolves to the exit code */
  run(args: string[]): Promise<number>;
}
