// The entry points other VS Code features use, in a real extension host with the tiny model:
// the `llava_askAboutImage` language model tool through vscode.lm.invokeTool, the @llava participant's
// handler driven with a request and response stream of our own (code-server has no Chat view), and
// the remote backend (llava.backend = openai) against a `llava serve` this test starts.
import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { activatedApi, extension, testPng, tinyModelDir, useTinyModel } from './helpers';

const TOOL = 'llava_askAboutImage';
const QUESTION = 'What is in this image?';

async function workspaceImage(): Promise<vscode.Uri> {
  const [png] = await vscode.workspace.findFiles('*.png', undefined, 1);
  assert.ok(png, 'the test workspace holds a PNG');
  return png;
}

function toolText(result: vscode.LanguageModelToolResult): string[] {
  return result.content.map((p) => (p instanceof vscode.LanguageModelTextPart ? p.value : JSON.stringify(p)));
}

/** A response stream that records what the handler sends. */
function recordingStream() {
  const markdown: string[] = [];
  const buttons: vscode.Command[] = [];
  const progress: string[] = [];
  const stream = {
    markdown: (v: string | vscode.MarkdownString) => void markdown.push(typeof v === 'string' ? v : v.value),
    button: (c: vscode.Command) => void buttons.push(c),
    progress: (v: string) => void progress.push(v),
    anchor: () => undefined,
    filetree: () => undefined,
    reference: () => undefined,
    push: () => undefined,
  } as unknown as vscode.ChatResponseStream;
  return { stream, markdown, buttons, progress };
}

function chatRequest(prompt: string, command?: string, references: vscode.ChatPromptReference[] = []): vscode.ChatRequest {
  return { prompt, command, references, toolReferences: [], toolInvocationToken: undefined as never, model: undefined as never } as unknown as vscode.ChatRequest;
}

const none = new vscode.CancellationTokenSource().token;

export function defineToolTests(): void {
  describe('language model tool and @llava', function () {
    this.timeout(180_000);
    before(async () => {
      await useTinyModel();
      await activatedApi();
    });

    it('contributes llava_askAboutImage with its input schema to vscode.lm.tools', () => {
      const tool = vscode.lm.tools.find((t) => t.name === TOOL);
      assert.ok(tool, `lm.tools: ${vscode.lm.tools.map((t) => t.name).join(', ')}`);
      const schema = tool.inputSchema as { properties?: Record<string, unknown>; required?: string[] };
      assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), ['find', 'image', 'question']);
      assert.deepEqual(schema.required, ['image']);
    });

    it('vscode.lm.invokeTool answers with the model, as the chat would', async () => {
      const api = await activatedApi();
      const image = await workspaceImage();
      const want = (await api.ask(image, QUESTION)).text;
      const result = await vscode.lm.invokeTool(TOOL, { input: { image: vscode.workspace.asRelativePath(image), question: QUESTION }, toolInvocationToken: undefined }, none);
      const parts = toolText(result);
      assert.equal(parts.length, 1);
      assert.equal(parts[0], want);
      assert.ok(want.length > 0);
      console.log(`  [tool] ${TOOL}(${vscode.workspace.asRelativePath(image)}) -> ${JSON.stringify(parts[0].slice(0, 80))}`);
    });

    it('find adds the boxes as JSON in image pixels', async () => {
      const image = await workspaceImage();
      const result = await vscode.lm.invokeTool(TOOL, { input: { image: image.toString(), find: 'the sky' }, toolInvocationToken: undefined }, none);
      const parts = toolText(result);
      assert.equal(parts.length, 2);
      const json = JSON.parse(parts[1]);
      assert.equal(json.find, 'the sky');
      assert.ok(Array.isArray(json.boxes));
      for (const b of json.boxes) assert.ok([b.x, b.y, b.width, b.height].every((v: unknown) => typeof v === 'number'));
    });

    it('refuses images outside the workspace folders, and bad input, with a message', async () => {
      await assert.rejects(
        Promise.resolve(vscode.lm.invokeTool(TOOL, { input: { image: testPng().fsPath, question: QUESTION }, toolInvocationToken: undefined }, none)),
        /outside the workspace/,
      );
      await assert.rejects(Promise.resolve(vscode.lm.invokeTool(TOOL, { input: { image: '../../etc/passwd.png', question: 'x' }, toolInvocationToken: undefined }, none)), /outside the workspace|no such file/);
      await assert.rejects(Promise.resolve(vscode.lm.invokeTool(TOOL, { input: { image: 'x.png' }, toolInvocationToken: undefined }, none)), /question/);
    });

    it('@llava answers about an image path in the prompt, streamed, with an Open in LLaVA panel button', async () => {
      const api = await activatedApi();
      const image = await workspaceImage();
      const rel = vscode.workspace.asRelativePath(image);
      const want = (await api.ask(image, QUESTION)).text;
      const rec = recordingStream();
      const result = await api.chatHandler(chatRequest(`${rel} ${QUESTION}`), { history: [] } as never, rec.stream, none);
      assert.equal((result as vscode.ChatResult)?.errorDetails, undefined, JSON.stringify(result));
      const shown = rec.markdown.join('');
      // the model's text, with only <, > and image syntax escaped
      assert.equal(shown.replace(/\\([<>])/g, '$1').replace(/!\\\[/g, '!['), want);
      assert.ok(rec.markdown.length > 1, 'streamed in pieces');
      assert.ok(rec.buttons.some((b) => b.command === 'llava.askAboutImage' && (b.arguments?.[0] as vscode.Uri).toString() === image.toString()));
    });

    it('@llava reads a #file: reference and an attached image (bytes), answering as the chat would', async () => {
      const api = await activatedApi();
      const image = await workspaceImage();
      const want = (await api.ask(image, QUESTION)).text;
      const unescape = (md: string) => md.replace(/\\([<>])/g, '$1').replace(/!\\\[/g, '![');
      const ref = `#file:${path.basename(image.fsPath)}`;
      const viaRef = recordingStream();
      await api.chatHandler(chatRequest(`${ref} ${QUESTION}`, undefined, [{ id: 'vscode.file', range: [0, ref.length], value: image }]), { history: [] } as never, viaRef.stream, none);
      assert.equal(unescape(viaRef.markdown.join('')), want, 'the #file: reference is the image; its text is not part of the question');

      const bytes = await vscode.workspace.fs.readFile(image);
      const attached = recordingStream();
      const binary = { mimeType: 'image/png', data: async () => bytes };
      await api.chatHandler(chatRequest(QUESTION, undefined, [{ id: 'pasted.png', value: binary }]), { history: [] } as never, attached.stream, none);
      assert.equal(unescape(attached.markdown.join('')), want);
      assert.equal(attached.buttons.length, 0, 'no panel button for bytes that are not a workspace file');
    });

    it('@llava /caption captions a named image with the short preset', async () => {
      const api = await activatedApi();
      const image = await workspaceImage();
      const rel = vscode.workspace.asRelativePath(image);
      const want = (await api.ask(image, 'Write a short, one-sentence caption for this image.')).text.trim();
      const rec = recordingStream();
      await api.chatHandler(chatRequest(rel, 'caption'), { history: [] } as never, rec.stream, none);
      const md = rec.markdown.join('').replace(/\\([<>])/g, '$1').replace(/!\\\[/g, '![');
      assert.equal(md, `- **${rel}**: ${want}\n`);
    });

    it('@llava /find lists boxes and offers the panel; an image outside the workspace is refused', async () => {
      const api = await activatedApi();
      const image = await workspaceImage();
      const rec = recordingStream();
      await api.chatHandler(chatRequest(`/find the sky ${vscode.workspace.asRelativePath(image)}`.replace('/find ', ''), 'find'), { history: [] } as never, rec.stream, none);
      assert.match(rec.markdown.join(''), new RegExp(path.basename(image.fsPath).replace('.', '\\.')));
      assert.ok(rec.buttons.some((b) => b.command === 'llava.findInImage' && b.arguments?.[1] === 'the sky'));
      const out = recordingStream();
      await api.chatHandler(chatRequest(`${testPng().fsPath} what is it?`), { history: [] } as never, out.stream, none);
      assert.match(out.markdown.join(''), /outside the workspace/);
      assert.equal(out.buttons.length, 0);
    });
  });

  describe('remote backend (llava.backend = openai) against llava serve', function () {
    this.timeout(180_000);
    let server: ChildProcess | undefined;

    after(async () => {
      const cfg = vscode.workspace.getConfiguration('llava');
      await cfg.update('backend', undefined, vscode.ConfigurationTarget.Global);
      await cfg.update('remote.baseUrl', undefined, vscode.ConfigurationTarget.Global);
      await cfg.update('remote.model', undefined, vscode.ConfigurationTarget.Global);
      server?.kill('SIGTERM');
    });

    it('answers through the remote server, the same text the local engine gives', async () => {
      await useTinyModel();
      const api = await activatedApi();
      const image = await workspaceImage();
      const local = (await api.ask(image, QUESTION)).text;

      const cli = path.join(extension().extensionPath, 'dist', 'cli.js');
      server = spawn(process.execPath, [cli, 'serve', '--model', tinyModelDir(), '--provider', 'cpu', '--port', '0', '--model-name', 'tiny'], { stdio: ['ignore', 'pipe', 'pipe'] });
      let err = '';
      server.stderr!.on('data', (d) => (err += d));
      const url = await new Promise<string>((resolve, reject) => {
        let out = '';
        server!.stdout!.on('data', (d) => {
          out += d;
          const m = /listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]);
        });
        server!.on('exit', (code) => reject(new Error(`llava serve exited ${code}: ${err}`)));
      });
      const cfg = vscode.workspace.getConfiguration('llava');
      await cfg.update('remote.baseUrl', `${url}/v1`, vscode.ConfigurationTarget.Global);
      await cfg.update('remote.model', 'tiny', vscode.ConfigurationTarget.Global);
      await cfg.update('backend', 'openai', vscode.ConfigurationTarget.Global);

      const deltas: string[] = [];
      const remote = await api.ask(image, QUESTION, (t) => deltas.push(t));
      assert.equal(remote.provider, 'remote');
      assert.equal(remote.text, local);
      assert.equal(deltas.join(''), local);
      // the log line travels on the server's stderr, a pipe of its own: it may reach us after the response did
      const logged = /prompt \+ \d+ new tokens, \w+, streamed/;
      for (const until = Date.now() + 10_000; !logged.test(err) && Date.now() < until; ) await new Promise((r) => setTimeout(r, 50));
      assert.match(err, logged, 'the server logged the streamed request');
      console.log(`  [remote] ${url} answered ${JSON.stringify(remote.text.slice(0, 60))} (same as the local engine)`);
    });
  });
}
