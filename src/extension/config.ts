// The only caller of vscode.workspace.getConfiguration: every setting has a typed getter here,
// read fresh each time (settings can change while the extension runs).

import * as vscode from 'vscode';
import { EXECUTION_PROVIDER_CHOICES, type BoxFrame, type ExecutionProviderChoice } from '../core';

const SECTION = 'llava';

const PROVIDERS = EXECUTION_PROVIDER_CHOICES;

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
  /** MiB of KV cache the engine keeps so follow-up questions prefill only their new tokens; 0 = off */
  conversationCacheMB(): number {
    return clampInt(cfg().get('conversationCacheMB'), 0, 65536, 512);
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
    return ['model', 'modelsFolder', 'executionProvider', 'threads', 'conversationCacheMB'].some((k) => e.affectsConfiguration(`${SECTION}.${k}`));
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

/** The remote (OpenAI-compatible) backend's settings; the API key is in SecretStorage, not here. */
export const remoteConfig = {
  backend(): 'local' | 'openai' {
    return cfg().get<string>('backend', 'local') === 'openai' ? 'openai' : 'local';
  },
  baseUrl(): string {
    return cfg().get<string>('remote.baseUrl', 'http://127.0.0.1:8000/v1').trim() || 'http://127.0.0.1:8000/v1';
  },
  model(): string {
    return cfg().get<string>('remote.model', 'llava-hf/llava-1.5-7b-hf').trim() || 'llava-hf/llava-1.5-7b-hf';
  },
  concurrency(): number {
    return clampInt(cfg().get('remote.concurrency'), 1, 64, 8);
  },
  /** '' = from the catalog entry of remote.model (else LLaVA-1.5's norm1) */
  boxFrame(): BoxFrame | undefined {
    const v = cfg().get<string>('remote.boxFrame', '');
    return v === 'norm1' || v === 'norm1000' || v === 'input_pixels' ? v : undefined;
  },
  preprocess(): 'pad' | 'crop' | 'resize' {
    const v = cfg().get<string>('remote.preprocess', 'pad');
    return v === 'crop' || v === 'resize' ? v : 'pad';
  },
};
