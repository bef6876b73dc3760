import * as vscode from 'vscode';

export type EngineState = 'idle' | 'loading' | 'generating' | 'error' | 'stopped';

export interface EngineStatus {
  /** short model name (catalog label or folder name) */
  model?: string;
  /** execution provider in use: 'cpu', 'cuda', 'dml', 'coreml' */
  provider?: string;
  state: EngineState;
  /** why the engine is not on the provider it tried first; '' or undefined when it is */
  fallbackReason?: string;
  /** one line for the tooltip: the error message, load time, tokens/s, ... */
  detail?: string;
}

const ICONS: Record<EngineState, string> = {
  idle: '$(eye)',
  loading: '$(loading~spin)',
  generating: '$(loading~spin)',
  error: '$(error)',
  stopped: '$(circle-slash)',
};

const STATE_WORDS: Record<EngineState, string> = {
  idle: 'ready',
  loading: 'loading the model…',
  generating: 'generating…',
  error: 'error',
  stopped: 'not running (loads on the next question)',
};

const PROVIDER_NAMES: Record<string, string> = { cpu: 'CPU', cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML' };

/** The status-bar entry that says which model runs where, and whether it had to fall back. */
export class EngineStatusBar implements vscode.Disposable {
  private readonly item: vscode.StatusBarItem;

  constructor() {
    // A stable id lets users hide/move it like any other item; priority just right of the language.
    this.item = vscode.window.createStatusBarItem('llava.engine', vscode.StatusBarAlignment.Right, 100);
    this.item.name = 'LLaVA Engine';
    this.item.command = { title: 'Select Model', command: 'llava.selectModel' };
    this.update({ state: 'stopped' });
    this.item.show();
  }

  update(s: EngineStatus): void {
    const provider = s.provider ? (PROVIDER_NAMES[s.provider] ?? s.provider) : undefined;
    const label = [s.model ?? 'no model', provider].filter(Boolean).join(' · ');
    this.item.text = `${ICONS[s.state]} LLaVA: ${label}`;

    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = { enabledCommands: ['llava.selectModel', 'llava.manageModels', 'llava.showLogs'] };
    // appendText escapes Markdown and $(icon) syntax: paths and error messages render literally.
    md.appendMarkdown('**LLaVA**\n\n');
    line(md, 'Model: ', s.model ?? 'none selected');
    line(md, 'Execution provider: ', provider ?? 'not loaded yet');
    line(md, 'State: ', STATE_WORDS[s.state]);
    if (s.fallbackReason) line(md, `$(warning) Fell back to ${provider ?? 'another provider'}: `, s.fallbackReason);
    if (s.detail) line(md, '', s.detail);
    md.appendMarkdown('[Select Model](command:llava.selectModel) · [Manage Models](command:llava.manageModels) · [Show Logs](command:llava.showLogs)');
    this.item.tooltip = md;

    // Warning colour for anything the user should know about: a provider fallback or an error.
    const warn = s.state === 'error' || !!s.fallbackReason;
    this.item.backgroundColor = warn ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.accessibilityInformation = {
      label: `LLaVA: ${label}, ${STATE_WORDS[s.state]}${s.fallbackReason ? `, fell back: ${s.fallbackReason}` : ''}`,
    };
  }

  dispose(): void {
    this.item.dispose();
  }
}

function line(md: vscode.MarkdownString, label: string, text: string): void {
  md.appendMarkdown(label);
  md.appendText(text);
  md.appendMarkdown('\n\n');
}
