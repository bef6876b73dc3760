// The `llava` command line (a program: nothing imports it), over the same engine the extension uses,
// in-process. Uses the doors of core, engine, captioning, hub, server and eval; never vscode.
//
// One file per subcommand, each a `CliCommand` (name, summary, usage, run) in the table below: a new
// subcommand is a new file and one line here. This file owns what they share: help, --version,
// unknown commands, and printing errors as one line (by their stable `code`, never a class name:
// names are mangled in the minified build).

import { EngineError, oneLine } from '../core';
import { UsageError, type CliCommand } from './args';
import { askCommand } from './ask';
import { captionCommand } from './caption';
import { evalCommand } from './eval';
import { convertCommand } from './convert';
import { infoCommand } from './info';
import { downloadCommand } from './download';
import { serveCommand } from './serve';
import { version } from '../../package.json';

const COMMANDS: readonly CliCommand[] = [askCommand, infoCommand, captionCommand, downloadCommand, convertCommand, serveCommand, evalCommand];

function overview(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return (
    `llava ${version}: ask a local LLaVA model about images.\n\n` +
    `Usage: llava <command> [options]\n\nCommands:\n` +
    COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n') +
    `\n\n'llava <command> --help' shows a command's options.\n`
  );
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const topic = name === 'help' ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(topic ? topic.usage : overview());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-v' || name === 'version') {
    process.stdout.write(`${version}\n`);
    return 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) throw new UsageError(name.startsWith('-') ? `unknown option ${name} (options go after the command)` : `unknown command "${name}"`);
  return command.run(rest);
}

/** One line for any error: a usage mistake also prints the usage. */
export function describeError(err: unknown): { text: string; exitCode: number } {
  if (err instanceof UsageError) return { text: `llava: ${err.message}\n\n${err.usage ?? overview()}`, exitCode: 2 };
  if (err instanceof EngineError) return { text: `llava: ${err.message} [${err.code}]\n`, exitCode: 1 };
  const message = err instanceof Error ? err.message : String(err);
  return { text: `llava: ${oneLine(message)}\n`, exitCode: 1 };
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const { text, exitCode } = describeError(err);
    process.stderr.write(text);
    if (process.env.LLAVA_DEBUG) process.stderr.write(`${(err as Error)?.stack ?? ''}\n`);
    process.exit(exitCode);
  },
);
