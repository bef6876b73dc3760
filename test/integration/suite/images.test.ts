// The host reads workspace images as untrusted input (issue 14, items 8 and 12): regular files only, links
// kept inside the workspace folder, FIFOs never opened, and URIs coming from the webview (a drop, a restored
// chat) accepted only inside the open workspace folders. Files are made in the test workspace at run time.
import * as assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, testPng } from './helpers';

export function defineImageFileTests(): void {
  describe('image files in the host', function () {
    this.timeout(30_000);
    let dir: string;
    let outside: string;

    before(() => {
      const folder = vscode.workspace.workspaceFolders?.[0];
      // both runners open a local folder (test/e2e/run.mjs its sandbox, .vscode-test.mjs an empty temp one)
      assert.ok(folder && folder.uri.scheme === 'file', 'the extension-host suite needs a local workspace folder');
      dir = fs.mkdtempSync(path.join(folder.uri.fsPath, '.llava-it-'));
      outside = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-it-outside-'));
      const png = fs.readFileSync(testPng().fsPath);
      fs.writeFileSync(path.join(dir, 'ok.png'), png);
      fs.writeFileSync(path.join(outside, 'secret.png'), png);
      fs.symlinkSync(path.join(outside, 'secret.png'), path.join(dir, 'escape.png'));
      fs.symlinkSync('/dev/zero', path.join(dir, 'zero.png'));
      fs.symlinkSync(path.join(dir, 'ok.png'), path.join(dir, 'inside-link.png'));
      execFileSync('mkfifo', [path.join(dir, 'fifo.png')]);
    });
    after(() => {
      if (dir) fs.rmSync(dir, { recursive: true, force: true });
      if (outside) fs.rmSync(outside, { recursive: true, force: true });
    });

    const uri = (name: string) => vscode.Uri.file(path.join(dir, name));

    it('reads a workspace image, also through a link that stays inside, from a drop too', async () => {
      const api = await activatedApi();
      assert.ok((await api.readImage(uri('ok.png'), true)).bytes > 0);
      assert.ok((await api.readImage(uri('inside-link.png'), true)).bytes > 0);
    });

    it('refuses a link out of the workspace, a /dev/zero link and a FIFO at once, with one line naming the file', async () => {
      const api = await activatedApi();
      for (const [name, reason] of [['escape.png', /outside the folder/], ['zero.png', /outside the folder|not a regular file/], ['fifo.png', /FIFO/]] as const) {
        const started = Date.now();
        await assert.rejects(api.readImage(uri(name)), (err: Error) => {
          assert.match(err.message, reason, `${name}: ${err.message}`);
          assert.ok(err.message.includes(name), `names the file: ${err.message}`);
          assert.doesNotMatch(err.message, /\n/);
          return true;
        });
        assert.ok(Date.now() - started < 5_000, `${name} took ${Date.now() - started} ms`);
      }
    });

    it('a URI from the webview outside the workspace folders is not read', async () => {
      const api = await activatedApi();
      const secret = vscode.Uri.file(path.join(outside, 'secret.png'));
      await assert.rejects(api.readImage(secret, true), /not inside an open workspace folder/);
    });
  });
}
