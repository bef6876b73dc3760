import * as vscode from 'vscode';

export type EngineState = 'idle' | 'loading' | 'generating' | 'error' | 'stopped';

export interface EngineStatus {
  /** short model name (catalog label or folder name) */
  model?: string;
  /** execution provider in use: 'cpu', 'cuda', 'dml', 'coreml', 'webgpu' */
  provider?: string;
  state: EngineState;
  /** on `auto`, why the CPU runs and not a GPU, in words: a normal state, kept to the tooltip */
  cpuReason?: string;
  /** the configured model is not on disk yet */
  notDownloaded?: boolean;
  /** state 'error': what is wrong, in words */
  problem?: string;
  /** one line for the tooltip: load time, ... */
  detail?: string;
}

const ICONS: Record<EngineState, string> = {
  idle: '$(eye)',
  loading: '$(loading~spin)',
  generating: '$(loading~spin)',
  error: '$(error)',
  stopped: '$(eye)',
};

const STATE_WORDS: Record<EngineState, string> = {
  idle: 'ready',
  loading: 'loading the model…',
  generating: 'generating…',
  error: 'not working',
  stopped: 'ready (the model loads on the next question)',
};

export const PROVIDER_NAMES: Record<string, string> = { cpu: 'CPU', cuda: 'CUDA', dml: 'DirectML', coreml: 'CoreML', webgpu: 'WebGPU' };

/** The status-bar entry that says which model runs where; warning colour only when something is wrong. */
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
    const where = s.state === 'error' && s.problem ? s.problem : s.notDownloaded ? 'not downloaded' : provider;
    const label = [s.model ?? 'no model', where].filter(Boolean).join(' · ');
    const icon = s.notDownloaded && s.state === 'stopped' ? '$(cloud-download)' : ICONS[s.state];
    this.item.text = `${icon} LLaVA: ${label}`;
    const stateWords = s.state === 'error' && s.problem ? s.problem : s.notDownloaded && s.state === 'stopped' ? 'not downloaded yet' : STATE_WORDS[s.state];

    const md = new vscode.MarkdownString(undefined, true);
    md.isTrusted = { enabledCommands: ['llava.selectModel', 'llava.manageModels', 'llava.showLogs', 'llava.downloadModel'] };
    // appendText escapes Markdown and $(icon) syntax: paths and error messages render literally.
    md.appendMarkdown('**LLaVA**\n\n');
    line(md, 'Model: ', s.model ?? 'none selected');
    line(md, 'Runs on: ', provider ?? 'decided when the model loads');
    line(md, 'State: ', stateWords);
    if (s.cpuReason) line(md, '', s.cpuReason);
    if (s.detail) line(md, '', s.detail);
    md.appendMarkdown(
      s.notDownloaded
        ? '[Download Model](command:llava.downloadModel) · [Select Model](command:llava.selectModel) · [Manage Models](command:llava.manageModels) · [Show Logs](command:llava.showLogs)'
        : '[Select Model](command:llava.selectModel) · [Manage Models](command:llava.manageModels) · [Show Logs](command:llava.showLogs)',
    );
    this.item.tooltip = md;

    // CPU on `auto` is a normal state: no colour. Colour means the user has something to fix.
    this.item.backgroundColor = s.state === 'error' ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.accessibilityInformation = { label: `LLaVA: ${label}, ${stateWords}` };
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
