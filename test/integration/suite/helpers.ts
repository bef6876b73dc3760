// Shared fixtures for the extension-host suite: the extension under test, its test API, the tiny model, a PNG.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { testPicture } from './png';

export const EXTENSION_ID = 'llava-vscode.llava-vscode';

/** The API `activate()` returns (the contract in the test brief; kept structural so the suite builds alone). */
export interface LlavaTestApi {
  ask(image: vscode.Uri, question: string, onDelta?: (t: string) => void): Promise<{ text: string; provider: string }>;
  readImage(image: vscode.Uri, untrusted?: boolean): Promise<{ name: string; bytes: number }>;
  engine: { pid(): number | undefined; kill(): void };
  chatHandler: (request: vscode.ChatRequest, context: vscode.ChatContext, stream: vscode.ChatResponseStream, token: vscode.CancellationToken) => vscode.ProviderResult<vscode.ChatResult | void>;
}

export function extension(): vscode.Extension<LlavaTestApi> {
  const ext = vscode.extensions.getExtension<LlavaTestApi>(EXTENSION_ID);
  assert.ok(ext, `extension ${EXTENSION_ID} is not installed in this host`);
  return ext;
}

export async function activatedApi(): Promise<LlavaTestApi> {
  const api = await extension().activate();
  assert.ok(api && typeof api.ask === 'function', 'activate() did not return an API with ask()');
  assert.ok(api.engine && typeof api.engine.pid === 'function' && typeof api.engine.kill === 'function',
    'activate() did not return engine.pid() / engine.kill()');
  return api;
}

/** The generated tiny model: LLAVA_TEST_MODEL (set by test/e2e/run.mjs) or the repo's fixture folder. */
export function tinyModelDir(): string {
  const dir = process.env.LLAVA_TEST_MODEL || path.join(extension().extensionPath, 'test/fixtures/models/tiny-llava');
  assert.ok(fs.existsSync(path.join(dir, 'config.json')),
    `tiny model not found at ${dir} (run \`npm run fixtures\` first)`);
  return dir;
}

/**
 * Points the extension at the tiny model on the CPU. Written to the user settings so it also holds without a
 * workspace; a workspace that says otherwise would override it, which the assertion below catches.
 */
export async function useTinyModel(): Promise<string> {
  const dir = tinyModelDir();
  const cfg = vscode.workspace.getConfiguration('llava');
  await cfg.update('model', dir, vscode.ConfigurationTarget.Global);
  await cfg.update('executionProvider', 'cpu', vscode.ConfigurationTarget.Global);
  const now = vscode.workspace.getConfiguration('llava');
  assert.equal(now.get('model'), dir, 'llava.model is overridden by a workspace setting');
  assert.equal(now.get('executionProvider'), 'cpu', 'llava.executionProvider is overridden by a workspace setting');
  return dir;
}

let pictureUri: vscode.Uri | undefined;
/** A small PNG written once per run to a fresh temp folder. */
export function testPng(): vscode.Uri {
  if (!pictureUri) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-it-'));
    const file = path.join(dir, 'gradient.png');
    fs.writeFileSync(file, testPicture());
    pictureUri = vscode.Uri.file(file);
  }
  return pictureUri;
}

/** Polls `probe` until it returns a truthy value or `timeoutMs` passes (then fails with `what`). */
export async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM means it exists but belongs to someone else: still alive.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
