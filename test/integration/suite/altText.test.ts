// Alt text on real documents in the extension host: the code action is offered on `![](img.png)`, the
// command fills it with the model's `alt`-preset answer, one undo restores the file; in HTML every
// `<img>` without alt is filled in one go (alt="" is left alone) and one undo restores it all.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, useTinyModel } from './helpers';

// the `alt` caption preset (src/captioning/jobs.ts), as the command asks it
const ALT_PROMPT = 'Write alt text for this image for someone who cannot see it: what it shows and any important text, in one or two sentences.';

async function openFile(name: string, text: string): Promise<vscode.TextEditor> {
  const folder = vscode.workspace.workspaceFolders![0].uri;
  const file = path.join(folder.fsPath, name);
  fs.writeFileSync(file, text);
  const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(file));
  return vscode.window.showTextDocument(doc);
}

export function defineAltTextTests(): void {
  describe('alt text', function () {
    this.timeout(180_000);
    let images: vscode.Uri[];
    before(async () => {
      await useTinyModel();
      images = (await vscode.workspace.findFiles('*.{png,jpg,jpeg,webp}', undefined, 5)).sort((a, b) => a.path.localeCompare(b.path));
      assert.ok(images.length >= 2, 'two workspace images');
    });
    after(async () => {
      await vscode.commands.executeCommand('workbench.action.closeAllEditors');
    });

    it('Markdown: the code action fills ![](img) from the model, and undo restores the file', async () => {
      const api = await activatedApi();
      const name = path.basename(images[0].fsPath);
      const original = `# Doc\n\nSee ![](${name}) here, and ![A described image](${name}).\n`;
      const editor = await openFile('alt-test.md', original);
      const doc = editor.document;
      const at = doc.positionAt(original.indexOf('![]') + 1);
      // a document just opened may be asked before its language's providers are wired: ask again briefly
      let actions: vscode.CodeAction[] = [];
      let action: vscode.CodeAction | undefined;
      for (let i = 0; i < 20 && !action; i++) {
        if (i) await new Promise((r) => setTimeout(r, 250));
        actions = (await vscode.commands.executeCommand<vscode.CodeAction[]>('vscode.executeCodeActionProvider', doc.uri, new vscode.Range(at, at))) ?? [];
        action = actions.find((a) => a.title === 'Generate alt text with LLaVA');
      }
      assert.ok(action?.command, `offered: ${actions.map((a) => a.title).join(' | ')}`);

      const want = (await api.ask(images[0], ALT_PROMPT)).text.replace(/\s+/g, ' ').trim().replace(/\\/g, '\\\\').replace(/([[\]])/g, '\\$1');
      const written = await vscode.commands.executeCommand<number>(action.command.command, ...(action.command.arguments ?? []));
      assert.equal(written, 1);
      assert.equal(doc.getText(), original.replace(`![](${name})`, `![${want}](${name})`));
      console.log(`  [alt] ![](${name}) -> ![${want.slice(0, 50)}…](${name})`);

      await vscode.window.showTextDocument(doc);
      await vscode.commands.executeCommand('undo');
      assert.equal(doc.getText(), original, 'one undo restores the file');
      await vscode.commands.executeCommand('workbench.action.files.revert');
    });

    it('HTML: Fill Missing Alt Text fills every <img> without alt in one edit; one undo restores it', async () => {
      await activatedApi();
      const [a, b] = images.map((u) => path.basename(u.fsPath));
      const original = `<p><img src="${a}"> <img alt="" src="${b}"> <img class="x" src='${b}'></p>\n`;
      const editor = await openFile('alt-test.html', original);
      const doc = editor.document;
      const written = await vscode.commands.executeCommand<number>('llava.fillMissingAltText', doc.uri);
      assert.equal(written, 2);
      const text = doc.getText();
      assert.equal((text.match(/ alt="[^"]+"/g) ?? []).length, 2, text);
      assert.ok(text.includes(`<img alt="" src="${b}">`), 'the decorative alt="" is kept');
      await vscode.window.showTextDocument(doc);
      await vscode.commands.executeCommand('undo');
      assert.equal(doc.getText(), original);
      await vscode.commands.executeCommand('workbench.action.files.revert');
    });
  });
}
