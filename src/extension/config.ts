// The only caller of vscode.workspace.getConfiguration: every setting has a typed getter here,
// read fresh each time (settings can change while the extension runs).

import * as vscode from 'vscode';
import type { ExecutionProviderChoice } from '../core';

const SECTION = 'llava';

const PROVIDERS: readonly ExecutionProviderChoice[] = ['auto', 'cuda', 'dml', 'coreml', 'cpu'];

function cfg(): vscode.WorkspaceConfiguration {
  return vscode.workspace.getConfiguration(SECTION);
}

function clampInt(v: unknown, min: number, max: number, fallback: number): number {
  const n = typeof v === 'number' && Number.isFinite(v) ? Math.round(v) : fallback;
  return Math.min(max, Math.max(min, n));
}

export const config = {
  /** catalog id (e.g. onnx-community/nanoLLaVA-1.5) or an absolute folder path */
  model(): string {
    return cfg().get<string>('model', 'onnx-community/nanoLLaVA-1.5').trim() || 'onnx-community/nanoLLaVA-1.5';
  },
  /** where downloaded models live; '' = the extension's global storage */
  modelsFolder(): string {
    return cfg().get<string>('modelsFolder', '').trim();
  },
  executionProvider(): ExecutionProviderChoice {
    const v = cfg().get<string>('executionProvider', 'auto');
    return (PROVIDERS as readonly string[]).includes(v) ? (v as ExecutionProviderChoice) : 'auto';
  },
  /** 0 = onnxruntime's default */
  threads(): number {
    return clampInt(cfg().get('threads'), 0, 256, 0);
  },
  maxNewTokens(): number {
    return clampInt(cfg().get('maxNewTokens'), 1, 4096, 512);
  },
  /** 0 = greedy */
  temperature(): number {
    const t = cfg().get<number>('temperature', 0);
    return typeof t === 'number' && Number.isFinite(t) ? Math.min(2, Math.max(0, t)) : 0;
  },
  /** 0 = keep the engine process until VS Code closes */
  idleUnloadMinutes(): number {
    return clampInt(cfg().get('idleUnloadMinutes'), 0, 1440, 10);
  },
  /** true when the change touches a setting that needs the engine process restarted or reloaded */
  affectsEngine(e: vscode.ConfigurationChangeEvent): boolean {
    return ['model', 'modelsFolder', 'executionProvider', 'threads'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
  },
  affects(e: vscode.ConfigurationChangeEvent, key: string): boolean {
    return e.affectsConfiguration(`${SECTION}.${key}`);
  },
  /**
   * Sets the execution provider wherever it is set (folder, workspace, user), so the new value is
   * the one that applies here; the user level when it is set nowhere.
   */
  async setExecutionProvider(value: ExecutionProviderChoice): Promise<void> {
    const c = cfg();
    const i = c.inspect<string>('executionProvider');
    const targets: vscode.ConfigurationTarget[] = [];
    if (i?.workspaceFolderValue !== undefined) targets.push(vscode.ConfigurationTarget.WorkspaceFolder);
    if (i?.workspaceValue !== undefined) targets.push(vscode.ConfigurationTarget.Workspace);
    if (i?.globalValue !== undefined || targets.length === 0) targets.push(vscode.ConfigurationTarget.Global);
    for (const t of targets) await c.update('executionProvider', value, t);
  },
};
