// The extension activates in a real extension host and registers everything its manifest declares.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, extension } from './helpers';

/** The commands the brief fixes; the manifest may declare more, never fewer. */
const CONTRACT_COMMANDS = ['llava.askAboutImage', 'llava.openChat', 'llava.selectModel', 'llava.downloadModel', 'llava.showLogs'];

export function defineActivationTests(): void {
  describe('activation', () => {
    it('activates and returns the test API', async () => {
      const api = await activatedApi();
      assert.equal(extension().isActive, true);
      // No question asked yet: the engine process should not exist (lazy start keeps activation cheap).
      assert.equal(api.engine.pid(), undefined, 'engine process started before the first question');
    });

    it('registers every command declared in package.json contributes.commands', async () => {
      await activatedApi();
      // Read the manifest from disk, not from a list in this file, so a newly declared command is checked too.
      const manifest = JSON.parse(fs.readFileSync(path.join(extension().extensionPath, 'package.json'), 'utf8'));
      const declared: string[] = (manifest.contributes?.commands ?? []).map((c: { command: string }) => c.command);
      for (const id of CONTRACT_COMMANDS) assert.ok(declared.includes(id), `package.json does not declare ${id}`);
      const registered = new Set(await vscode.commands.getCommands(true));
      const missing = declared.filter((id) => !registered.has(id));
      assert.deepEqual(missing, [], `declared but not registered: ${missing.join(', ')}`);
    });

    it('contributes the llava view container with the chat webview view', () => {
      const manifest = extension().packageJSON;
      const containers = manifest.contributes?.viewsContainers?.activitybar ?? [];
      assert.ok(containers.some((c: { id: string }) => c.id === 'llava'), 'no activity-bar container "llava"');
      const views = manifest.contributes?.views?.llava ?? [];
      assert.ok(views.some((v: { id: string; type?: string }) => v.id === 'llava.chatView' && v.type === 'webview'),
        'no webview view llava.chatView in container llava');
    });
  });
}
