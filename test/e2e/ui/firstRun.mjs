// First run and everyday states in the real workbench (issue 15), in the run's fresh profile with no model
// downloaded and the Hub endpoint (HF_ENDPOINT) pointed at a 127.0.0.1 port the harness controls:
//   - the palette lists every command (no `!isWeb`: the extension host runs on the server);
//   - before any question the status bar says the model is not downloaded (never "Ready");
//   - "Focus on Chat View" puts the cursor in the question box, and every Tab stop is visible and named;
//   - the first question without a model ends at once with an inline choice (Download (size) / Use Local Folder…);
//   - Stop ends the turn at once while a download hangs;
//   - an offline download says so in words, once, with Retry / Proxy Settings / Use Local Folder…;
//   - on `auto` a CPU-only machine shows plain "CPU" without warning colour, the reason in the tooltip;
//   - an explicit `cuda` that cannot load: one message with Switch to Auto / Open Setting / How to Enable CUDA;
//   - one unreadable image fails its own answer and leaves the status bar alone;
//   - an image over the pixel limit fails in words and offers a downscaled copy, which is answered and noted.
// The tests run in this order and leave the workspace settings as they found them (the tiny model, CPU).
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { explorerMenu, panelFrame, viewFrame } from '../lib/webview.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function writeWorkspaceSettings(sandbox, settings) {
  fs.writeFileSync(path.join(sandbox.workspace, '.vscode', 'settings.json'), JSON.stringify(settings, null, 2) + '\n');
}

function readWorkspaceSettings(sandbox) {
  return JSON.parse(fs.readFileSync(path.join(sandbox.workspace, '.vscode', 'settings.json'), 'utf8'));
}

/** The extension's status-bar entry. */
function statusItem(page) {
  return page.locator('.statusbar-item').filter({ hasText: 'LLaVA:' }).first();
}

async function waitFor(what, fn, timeout = 20_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await fn();
    if (last?.ok) return last;
    if (Date.now() > deadline) throw new Error(`${what}: ${JSON.stringify(last)}`);
    await sleep(200);
  }
}

/** Text and background colour of the status-bar entry, and of a neighbouring entry for comparison. */
async function statusLook(page) {
  const item = statusItem(page);
  await item.waitFor({ state: 'visible', timeout: 15_000 });
  return item.evaluate((el) => {
    const bg = (e) => getComputedStyle(e).backgroundColor;
    // a plain entry is transparent on the status bar; a warning or error entry has its own background
    return { text: (el.textContent ?? '').trim(), bg: bg(el), plainBg: 'rgba(0, 0, 0, 0)', aria: el.getAttribute('aria-label') ?? '', cls: el.className };
  });
}

async function openPalette(page, text) {
  const input = page.locator('.quick-input-widget input[type="text"]').first();
  // a key press can land while focus moves between a webview and the workbench: try again
  for (let i = 0; ; i++) {
    try {
      await page.keyboard.press('F1');
      await input.waitFor({ state: 'visible', timeout: 3_000 });
      await input.fill(text, { timeout: 5_000 });
      return input;
    } catch (e) {
      if (i === 3) throw e;
      await page.keyboard.press('Escape');
      await sleep(500);
    }
  }
}

async function runCommand(page, title) {
  const input = await openPalette(page, `>${title}`);
  const row = page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await input.press('Enter');
}

async function openSideView(page) {
  // the command, not the activity-bar item: clicking that while the view shows would hide it
  await runCommand(page, 'LLaVA: Open Chat');
  const frame = viewFrame(page);
  await frame.locator('[data-testid="question"]').waitFor({ state: 'visible', timeout: 30_000 });
  return frame;
}

/** Types a question and sends it; returns how many answers there were before (for lastAnswer). */
async function askIn(frame, text) {
  const before = await assistants(frame).count();
  const input = frame.locator('[data-testid="question"]');
  await input.fill(text);
  await input.press('Enter');
  return before;
}

const assistants = (frame) => frame.locator('[data-testid="message"][data-role="assistant"]');

/**
 * Waits for the newest assistant message (one more than `before` when given) to leave "streaming";
 * returns its state, text and buttons.
 */
async function lastAnswer(frame, timeout = 60_000, before = 0) {
  return waitFor('the last answer did not finish', async () => {
    const all = assistants(frame);
    const n = await all.count();
    if (n <= before) return { ok: false, n };
    const m = all.nth(n - 1);
    const state = await m.getAttribute('data-state');
    const text = ((await m.textContent()) ?? '').replace(/\s+/g, ' ').trim();
    const actions = await m.locator('[data-testid="message-action"]').allTextContents();
    return { ok: state === 'done' || state === 'error', state, text, actions: actions.map((a) => a.trim()), n };
  }, timeout);
}

async function notificationTexts(page) {
  return (await page.locator('.notifications-toasts .notification-toast').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
}

// ---- the tests ------------------------------------------------------------------------------------------

export async function paletteListsEveryCommand({ page, shots }) {
  const manifest = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8'));
  // commands whose palette entry has a `when` are contextual by design (alt text: in a Markdown/HTML editor)
  const contextual = new Set((manifest.contributes.menus?.commandPalette ?? []).filter((e) => e.when).map((e) => e.command));
  const want = manifest.contributes.commands
    .filter((c) => !c.command.startsWith('llava._test.') && !contextual.has(c.command))
    .map((c) => `${c.category}: ${c.title}`);
  await openPalette(page, '>LLaVA: ');
  await page.locator('.quick-input-widget .monaco-list-row').first().waitFor({ state: 'visible', timeout: 10_000 });
  await sleep(500);
  const rows = (await page.locator('.quick-input-widget .monaco-list-row').allTextContents()).map((t) => t.replace(/\s+/g, ' '));
  await shots.take(page, 'first-run-palette');
  await page.keyboard.press('Escape');
  const missing = want.filter((w) => !rows.some((r) => r.includes(w)));
  assert.deepEqual(missing, [], `missing from the palette: ${missing.join(', ')} (rows: ${rows.join(' | ')})`);
  return `${want.length} commands listed`;
}

export async function statusSaysNotDownloaded({ page, shots, sandbox }) {
  // the default catalog model, which the fresh profile has not downloaded (named in the workspace: the
  // extension-host suite, run before in the same profile, may have set a user-level model)
  writeWorkspaceSettings(sandbox, { 'llava.model': 'onnx-community/nanoLLaVA-1.5' });
  // the extension activates with its first use (no startup cost): open the chat
  const frame = await openSideView(page);
  const line = await waitFor('the chat status line never said there is no model', async () => {
    const t = ((await frame.locator('[data-testid="status"]').textContent()) ?? '').trim();
    return { ok: /no model/i.test(t), t };
  });
  await frame.locator('[data-testid="empty-state"]').waitFor({ state: 'visible', timeout: 5_000 });
  const look = await waitFor('the status bar never said "not downloaded"', async () => {
    const l = await statusLook(page);
    return { ...l, ok: /not downloaded/i.test(l.text) };
  });
  await shots.take(page, 'first-run-status-not-downloaded');
  assert.ok(!/ready/i.test(look.text + look.aria), `the status bar claims readiness: ${look.text} / ${look.aria}`);
  assert.equal(look.bg, look.plainBg, 'a model not downloaded yet is not a warning');
  assert.ok(!/ready/i.test(line.t), `the chat claims readiness: ${line.t}`);
  return `status bar "${look.text}"; chat "${line.t}"; empty state shown`;
}

export async function focusOnChatViewFocusesQuestion({ page, shots }) {
  await openSideView(page);
  // move focus away (the editor area), then come back through the palette
  await page.keyboard.press('Control+1');
  await runCommand(page, 'Focus on Chat View');
  const frame = viewFrame(page);
  await waitFor('the question box did not get the focus', async () => {
    const f = await frame.locator('body').evaluate(() => ({ has: document.hasFocus(), id: document.activeElement?.getAttribute('data-testid') }));
    return { ...f, ok: f.has && f.id === 'question' };
  }, 10_000);
  await shots.take(page, 'focus-chat-view');

  // Tab both ways from the question box: every stop is visible and has a name a screen reader can read.
  const stops = [];
  for (const key of ['Shift+Tab', 'Tab']) {
    await frame.locator('[data-testid="question"]').focus();
    for (let i = 0; i < 14; i++) {
      await page.keyboard.press(key);
      const s = await frame.locator('body').evaluate(() => {
        if (!document.hasFocus()) return { left: true };
        const host = document.activeElement;
        let e = host;
        while (e?.shadowRoot?.activeElement) e = e.shadowRoot.activeElement;
        if (!e || e === document.body) return { left: true };
        const r = e.getBoundingClientRect();
        const hr = host.getBoundingClientRect();
        const name = host.getAttribute('aria-label') || host.getAttribute('label') || host.getAttribute('title') || e.getAttribute('aria-label') || (host.textContent ?? '').trim();
        return { tag: host.tagName.toLowerCase(), name, visible: Math.max(r.width, hr.width) > 0 && Math.max(r.height, hr.height) > 0 };
      });
      if (s.left) break;
      stops.push({ ...s, key });
    }
  }
  assert.ok(stops.length > 0, 'Tab left the view at once');
  const dead = stops.filter((s) => !s.visible || !s.name);
  assert.deepEqual(dead, [], `dead Tab stops: ${JSON.stringify(dead)}`);
  return `question focused; ${stops.length} Tab stops, all visible and named (${stops.map((s) => s.name).join(' → ').slice(0, 200)})`;
}

export async function firstQuestionOffersChoiceInline({ page, shots }) {
  const frame = await openSideView(page);
  const t0 = Date.now();
  const before = await askIn(frame, 'What is in this image?');
  const a = await lastAnswer(frame, 10_000, before);
  const ms = Date.now() - t0;
  await shots.take(page, 'first-question-inline-choice');
  assert.equal(a.n, before + 1);
  assert.equal(a.state, 'done', `the turn did not end: ${a.state}`);
  // "Download <model> (<size>)", the size when the catalog knows it; the model's short name, never cut off
  assert.ok(a.actions.some((l) => /^Download [^()]+( \(\d[\d.,]* ?[KMG]B\))?$/.test(l)), `no Download (size) button: ${a.actions}`);
  const cut = await frame.locator('[data-testid="message-action"]').evaluateAll((els) =>
    els.filter((e) => e.scrollWidth > e.clientWidth + 1 || e.getBoundingClientRect().right > document.documentElement.clientWidth).map((e) => e.textContent));
  assert.deepEqual(cut, [], 'button labels cut off');
  assert.ok(a.actions.includes('Use Local Folder…'), `no Use Local Folder… button: ${a.actions}`);
  assert.ok(await frame.locator('[data-testid="stop"]').isHidden(), 'Stop is still shown: the turn looks busy');
  const toasts = await notificationTexts(page);
  assert.ok(!toasts.some((t) => /not downloaded/i.test(t)), `the choice was also a notification: ${toasts}`);
  return `inline choice after ${ms} ms: ${a.actions.join(' / ')}`;
}

export async function clearCanBeUndone({ page, shots }) {
  const frame = viewFrame(page);
  const messages = frame.locator('[data-testid="message"]');
  const before = await messages.count();
  assert.ok(before > 0, 'nothing to clear');
  await frame.locator('vscode-icon[label^="Clear conversation"]').click();
  await frame.locator('[data-testid="empty-state"]').waitFor({ state: 'visible', timeout: 5_000 });
  assert.equal(await messages.count(), 0, 'Clear left messages');
  const undo = frame.locator('[data-testid="undo-clear"]');
  await undo.waitFor({ state: 'visible', timeout: 5_000 });
  await shots.take(page, 'cleared-undo');
  await undo.click();
  await waitFor('Undo Clear did not bring the conversation back', async () => ({ ok: (await messages.count()) === before }), 5_000);
  assert.ok(await frame.locator('[data-testid="empty-state"]').isHidden(), 'the empty state stayed after Undo');
  // the guidance message came back with its buttons
  assert.ok((await frame.locator('[data-testid="message-action"][data-action="download"]').count()) > 0);
  return `${before} messages cleared and restored`;
}

export async function getStartedOpensWalkthrough({ page, shots }) {
  const frame = viewFrame(page);
  await frame.locator('[data-testid="empty-state"] vscode-button', { hasText: 'Get Started' }).click();
  const title = page.locator('.part.editor').getByText('Get Started with LLaVA').first();
  await title.waitFor({ state: 'visible', timeout: 15_000 });
  const steps = ['Pick or download a model', 'Ask about an image', 'Find something in an image', 'Caption a folder of images'];
  for (const step of steps) assert.ok(await page.locator('.part.editor').getByText(step).first().isVisible(), `walkthrough step "${step}" missing`);
  await shots.take(page, 'walkthrough');
  await runCommand(page, 'View: Close All Editors');
  return `${steps.length} steps`;
}

export async function settingsExplainedInUserTab({ page, shots }) {
  await runCommand(page, 'Preferences: Open User Settings');
  const editor = page.locator('.settings-editor');
  await editor.waitFor({ state: 'visible', timeout: 15_000 });
  await sleep(500);
  await page.keyboard.type('llava');
  const model = editor.locator('.setting-item').filter({ hasText: 'Select Model' }).first();
  await model.waitFor({ state: 'visible', timeout: 15_000 });
  await shots.take(page, 'settings-user-tab');
  // each by its id: the list of every llava setting is longer than the editor shows at once
  const links = [];
  for (const [id, s] of [['llava.model', 'Model'], ['llava.executionProvider', 'Execution Provider'], ['llava.modelsFolder', 'Models Folder']]) {
    await page.keyboard.press('Control+A');
    await page.keyboard.type(`@id:${id}`);
    await sleep(700);
    const titles = (await editor.locator('.setting-item .setting-item-label').allTextContents()).map((t) => t.trim());
    assert.ok(titles.includes(s), `the User tab does not show "${s}" (${id}): ${titles.join(', ')}`);
    // command names in descriptions are links
    links.push(...(await editor.locator('.setting-item a').allTextContents()));
  }
  assert.ok(links.some((l) => /Select Model/.test(l)), `no command link in the descriptions: ${links.join(', ')}`);
  await runCommand(page, 'View: Close All Editors');
  return `links: ${[...new Set(links)].filter((l) => /LLaVA/.test(l)).join(', ')}`;
}

export async function stopEndsHangingDownload({ page, shots, hub }) {
  await hub.mode('hang');
  const frame = viewFrame(page);
  await frame.locator('[data-testid="message-action"][data-action="download"]').last().click();
  const downloading = await waitFor('no "Downloading…" turn', async () => {
    const n = await assistants(frame).count();
    const m = assistants(frame).nth(n - 1);
    const state = await m.getAttribute('data-state');
    const text = (await m.textContent()) ?? '';
    return { ok: state === 'streaming' && /Downloading/.test(text), state, text };
  }, 10_000);
  await sleep(1000); // the request is out and hangs
  assert.ok(hub.connections() > 0, 'the download never reached the stub Hub');
  await shots.take(page, 'download-hanging');
  const t0 = Date.now();
  await frame.locator('[data-testid="stop"]').click();
  const a = await lastAnswer(frame, 5_000);
  const ms = Date.now() - t0;
  await shots.take(page, 'download-stopped');
  assert.notEqual(a.state, 'streaming');
  assert.ok(/stopped/i.test(a.text), `the stopped turn does not say so: ${a.text}`);
  assert.ok(a.actions.some((l) => l.startsWith('Download ')), `no way to start again: ${a.actions}`);
  void downloading;
  return `Stop ended the turn in ${ms} ms`;
}

export async function offlineDownloadInWords({ page, shots, hub }) {
  await hub.mode('closed');
  const frame = viewFrame(page);
  const guidance = assistants(frame).last();
  await frame.locator('[data-testid="message-action"][data-action="download"]').last().click();
  // the choice gives way to "Downloading…", which ends in the failure
  await waitFor('the download did not start', async () => ({ ok: (await guidance.count()) === 0 || (await guidance.getAttribute('data-state')) !== 'done' }), 10_000).catch(() => undefined);
  const a = await lastAnswer(frame, 60_000);
  await shots.take(page, 'download-offline');
  assert.equal(a.state, 'error');
  assert.ok(a.text.includes("Can't reach the Hugging Face Hub: offline or behind a proxy?"), a.text);
  assert.ok(!/partial file|ECONNREFUSED|getaddrinfo/i.test(a.text), `jargon or untrue claims: ${a.text}`);
  assert.deepEqual(a.actions, ['Retry', 'Proxy Settings', 'Use Local Folder…']);
  // shown once: not again in the status line, nor as a notification
  const body = await frame.locator('body').textContent();
  assert.equal(body.split("Can't reach the Hugging Face Hub").length - 1, 1, 'the error is shown more than once in the chat');
  const toasts = await notificationTexts(page);
  assert.ok(!toasts.some((t) => /Hugging Face|download/i.test(t)), `also a notification: ${toasts}`);
  return a.actions.join(' / ');
}

export async function cpuOnAutoIsPlain({ page, shots, sandbox, modelDir }) {
  writeWorkspaceSettings(sandbox, { 'llava.model': modelDir, 'llava.executionProvider': 'auto' });
  const frame = viewFrame(page);
  await waitFor('the status bar did not pick up the tiny model', async () => {
    const l = await statusLook(page);
    return { ...l, ok: l.text.includes(path.basename(modelDir)) };
  });
  await sleep(1000); // every setting of the file has reached the extension host
  const before = await askIn(frame, 'What is in this image?');
  const a = await lastAnswer(frame, 120_000, before);
  assert.equal(a.state, 'done', a.text);
  assert.equal(a.actions.length, 0);
  const look = await waitFor('no "CPU" in the status bar', async () => {
    const l = await statusLook(page);
    return { ...l, ok: /\bCPU\b/.test(l.text) && !/loading|spin/.test(l.text) };
  });
  assert.equal(look.bg, look.plainBg, `CPU on auto is shown in a warning colour (${look.bg})`);
  assert.ok(!/warning|fell back|fallback|cuda/i.test(look.text), look.text);
  await statusItem(page).hover();
  const hover = page.locator('.monaco-hover, .workbench-hover').filter({ hasText: 'Runs on' }).first();
  await hover.waitFor({ state: 'visible', timeout: 10_000 });
  const tip = ((await hover.textContent()) ?? '').replace(/\s+/g, ' ');
  await shots.take(page, 'cpu-status-tooltip');
  await page.mouse.move(700, 400);
  assert.ok(/CPU/.test(tip) && /NVIDIA|GPU/.test(tip), `the tooltip does not say why: ${tip}`);
  assert.ok(!/libonnxruntime|\.so\b|\/tmp\//.test(tip), `the tooltip shows paths: ${tip}`);
  return `${look.text}; tooltip: ${tip.slice(0, 160)}`;
}

export async function explicitCudaOneMessage({ page, shots, sandbox, modelDir }) {
  writeWorkspaceSettings(sandbox, { 'llava.model': modelDir, 'llava.executionProvider': 'cuda' });
  await sleep(1500); // the configuration change reaches the extension host
  const frame = viewFrame(page);
  const before = await askIn(frame, 'What is in this image?');
  const a = await lastAnswer(frame, 60_000, before);
  await shots.take(page, 'cuda-unavailable');
  assert.equal(a.state, 'error', a.text);
  assert.ok(/CUDA/.test(a.text) && /cannot be used/.test(a.text), a.text);
  assert.ok(!/libonnxruntime|\/tmp\//.test(a.text), `paths in the message: ${a.text}`);
  assert.deepEqual(a.actions, ['Switch to Auto', 'Open Setting', 'How to Enable CUDA']);
  const toasts = await notificationTexts(page);
  assert.ok(!toasts.some((t) => /CUDA/i.test(t)), `also a notification: ${toasts}`);
  // How to Enable CUDA opens the user guide's GPU section (rendered: works offline)
  await frame.locator('[data-testid="message-action"][data-action="cudaHelp"]').last().click();
  const preview = page.locator('.tabs-container .tab').filter({ hasText: 'README' }).first();
  await preview.waitFor({ state: 'visible', timeout: 15_000 });
  const md = page.locator('iframe.webview.ready[src*="extensionId=vscode.markdown-language-features"]').last()
    .contentFrame().locator('#active-frame').contentFrame();
  await md.getByText('Use an NVIDIA GPU (CUDA)').first().waitFor({ state: 'visible', timeout: 15_000 });
  await shots.take(page, 'cuda-help');
  await runCommand(page, 'View: Close All Editors');
  // Switch to Auto fixes the setting and answers the question
  const n = await assistants(frame).count();
  await frame.locator('[data-testid="message-action"][data-action="switchToAuto"]').last().click();
  const answered = await waitFor('Switch to Auto did not answer', async () => {
    const c = await assistants(frame).count();
    const m = assistants(frame).nth(c - 1);
    const state = await m.getAttribute('data-state');
    const actions = await m.locator('[data-testid="message-action"]').count();
    return { ok: c === n && state === 'done' && actions === 0, c, state, actions };
  }, 120_000);
  await shots.take(page, 'cuda-switched-to-auto');
  assert.equal(readWorkspaceSettings(sandbox)['llava.executionProvider'], 'auto');
  return `${a.actions.join(' / ')}; Switch to Auto answered (${answered.state})`;
}

/**
 * `webgpu` chosen explicitly: the answer streams on WebGPU and the status bar says so. `.ci/run` gives this machine
 * a Vulkan adapter with no GPU (Mesa's lavapipe, scripts/setup-vulkan.sh) and sets LLAVA_REQUIRE_WEBGPU; without
 * either, the test says it did not run.
 */
export async function webgpuAnswers({ page, shots, sandbox, modelDir }) {
  const icds = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'].flatMap((d) => (fs.existsSync(d) ? fs.readdirSync(d) : []));
  if (!process.env.LLAVA_REQUIRE_WEBGPU && !icds.length) return 'not run: no Vulkan driver on this machine (scripts/setup-vulkan.sh installs one)';
  // a short answer: a software Vulkan adapter writes ~10 tokens/s
  writeWorkspaceSettings(sandbox, { 'llava.model': modelDir, 'llava.executionProvider': 'webgpu', 'llava.maxNewTokens': 24 });
  try {
    await sleep(1500); // the configuration change reaches the extension host
    const frame = viewFrame(page);
    const before = await askIn(frame, 'What is in this image?');
    const a = await lastAnswer(frame, 120_000, before);
    assert.equal(a.state, 'done', a.text);
    assert.equal(a.actions.length, 0, `actions: ${a.actions.join(' | ')}`);
    const look = await waitFor('no "WebGPU" in the status bar', async () => {
      const l = await statusLook(page);
      return { ...l, ok: /\bWebGPU\b/.test(l.text) && !/loading|spin/.test(l.text) };
    });
    assert.equal(look.bg, look.plainBg, `WebGPU is shown in a warning colour (${look.bg})`);
    await shots.take(page, 'webgpu-status');
    return `${look.text}; answer: ${a.text.slice(0, 60)}`;
  } finally {
    writeWorkspaceSettings(sandbox, { 'llava.model': modelDir, 'llava.executionProvider': 'auto' });
    await sleep(1500);
  }
}

export async function badImageLeavesStatusAlone({ page, shots, sandbox, modelDir }) {
  fs.writeFileSync(path.join(sandbox.workspace, 'broken.png'), Buffer.from('this is not a PNG file at all'));
  await explorerMenu(page, 'broken.png', 'Ask About Image');
  const frame = panelFrame(page);
  await frame.locator('[data-testid="question"]').waitFor({ state: 'visible', timeout: 30_000 });
  const before = await askIn(frame, 'What is in this image?');
  const a = await lastAnswer(frame, 60_000, before);
  await sleep(500);
  const look = await statusLook(page);
  await shots.take(page, 'bad-image');
  // the panel says it cannot show the file, instead of a broken-image icon
  assert.ok(await frame.locator('.image-area.broken').count() === 1, 'the panel shows a broken image without a word');
  assert.equal(a.state, 'error');
  assert.ok(/cannot be read/.test(a.text), a.text);
  assert.ok(!/error|not working/i.test(look.text + look.aria), `the status bar turned to error: ${look.text} / ${look.aria}`);
  assert.equal(look.bg, look.plainBg, 'one bad image coloured the status bar');
  const status = (await frame.locator('[data-testid="status"]').textContent()) ?? '';
  assert.ok(!/cannot be read/.test(status), `the error is repeated in the status line: ${status}`);
  // back to what the other UI tests expect: the tiny model on the CPU, no editors to restore, no broken file
  writeWorkspaceSettings(sandbox, { 'llava.model': modelDir, 'llava.executionProvider': 'cpu' });
  await runCommand(page, 'View: Close All Editors');
  await sleep(500);
  fs.rmSync(path.join(sandbox.workspace, 'broken.png'), { force: true });
  return `answer: ${a.text.slice(0, 80)}; status bar: ${look.text}`;
}

/**
 * An image over the 64 MP limit (a flat 9000 x 8000 PNG, small on disk) fails its question in words and offers
 * "Ask About a Downscaled Copy"; choosing it answers about a 4,096 x 3,641 copy and says so under the answer.
 */
export async function tooLargeImageOffersDownscaledCopy({ page, shots, sandbox }) {
  const sharp = createRequire(path.join(REPO, 'package.json'))('sharp');
  const file = path.join(sandbox.workspace, 'poster.png');
  await sharp({ create: { width: 9000, height: 8000, channels: 3, background: { r: 30, g: 120, b: 200 } } }).png().toFile(file);
  try {
    await explorerMenu(page, 'poster.png', 'Ask About Image');
    const frame = panelFrame(page);
    await frame.locator('[data-testid="question"]').waitFor({ state: 'visible', timeout: 30_000 });
    const before = await askIn(frame, 'What colour is this?');
    const failed = await lastAnswer(frame, 60_000, before);
    assert.equal(failed.state, 'error', failed.text);
    assert.ok(/9,000 × 8,000 px \(72 MP\) is over the 64 MP limit/.test(failed.text), failed.text);
    assert.ok(failed.actions.includes('Ask About a Downscaled Copy'), `actions: ${failed.actions.join(' | ')}`);
    await shots.take(page, 'too-large-offer');
    await assistants(frame).last().locator('[data-testid="message-action"]').filter({ hasText: 'Ask About a Downscaled Copy' }).click();
    // the failed turn is asked again (in place or as a new answer): wait for the newest answer to be done
    const answered = await waitFor('the answer about the downscaled copy did not finish', async () => {
      const last = assistants(frame).last();
      const state = await last.getAttribute('data-state');
      return { ok: state === 'done', state, text: ((await last.textContent()) ?? '').replace(/\s+/g, ' ').trim() };
    }, 120_000);
    assert.ok(/downscaled to 4,096 × 3,641 px/.test(answered.text), `no note that the model saw a copy: ${answered.text}`);
    await shots.take(page, 'too-large-downscaled');
    return answered.text.slice(-80);
  } finally {
    await runCommand(page, 'View: Close All Editors');
    await sleep(500);
    fs.rmSync(file, { force: true });
  }
}

export const firstRunTests = [
  ['First run: the palette lists every LLaVA command', paletteListsEveryCommand],
  ['First run: the status bar says the model is not downloaded (no "Ready")', statusSaysNotDownloaded],
  ['Empty state: Get Started opens the walkthrough', getStartedOpensWalkthrough],
  ['Settings: model, execution provider and models folder shown under User, with command links', settingsExplainedInUserTab],
  ['Keyboard: Focus on Chat View puts the cursor in the question box; every Tab stop is visible and named', focusOnChatViewFocusesQuestion],
  ['First run: the first question without a model ends at once with an inline choice', firstQuestionOffersChoiceInline],
  ['Clear empties the chat and Undo Clear brings it back', clearCanBeUndone],
  ['First run: Stop ends the turn at once while a download hangs', stopEndsHangingDownload],
  ['First run: an offline download says so in words, once, with Retry / Proxy Settings / Use Local Folder', offlineDownloadInWords],
  ['CPU on auto: plain "CPU" without warning colour; the reason in the tooltip', cpuOnAutoIsPlain],
  ['Explicit cuda that cannot load: one message with Switch to Auto / Open Setting / How to Enable CUDA', explicitCudaOneMessage],
  ['WebGPU chosen in settings: the answer streams and the status bar says WebGPU', webgpuAnswers],
  ['One unreadable image fails its own answer; the status bar stays fine', badImageLeavesStatusAlone],
  ['An image over the pixel limit offers a downscaled copy, and the answer says the model saw one', tooLargeImageOffersDownscaledCopy],
];
