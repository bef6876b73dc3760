import type * as vscode from 'vscode';

/** `llava.showLogs`: reveals the LLaVA log channel (engine process output, load times, downloads). */
export function showLogs(log: vscode.LogOutputChannel): void {
  // preserveFocus: the user usually wants to keep typing where they were while reading the log.
  log.show(true);
}
