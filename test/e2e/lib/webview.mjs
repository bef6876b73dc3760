// Helpers for the extension's webviews inside the workbench: each webview is an outer iframe (tagged with the
// extension id and, for views, purpose=webviewView) holding the content in an inner #active-frame.
import * as assert from 'node:assert/strict';

export const EXTENSION_ID = 'llava-vscode.llava-vscode';
const OUTER = `iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]`;

/** The newest editor-area chat panel. */
export function panelFrame(page) {
  return page.locator(`${OUTER}:not([src*="purpose=webviewView"])`).last().contentFrame().locator('#active-frame').contentFrame();
}

/** The side-bar chat view (llava.chatView). */
export function viewFrame(page) {
  return page.locator(`${OUTER}[src*="purpose=webviewView"]`).last().contentFrame().locator('#active-frame').contentFrame();
}

/** Waits until the webview's main image is shown and decoded (an <img> with pixels, or any visible element). */
export async function expectImageShown(frame, { selector = '[data-testid="image"]', what = 'the image', timeout = 30_000 } = {}) {
  const img = frame.locator(selector);
  try {
    await img.first().waitFor({ state: 'visible', timeout });
  } catch (e) {
    throw new Error(`${what} did not appear: ${e.message.split('\n')[0]}`);
  }
  const deadline = Date.now() + timeout;
  for (;;) {
    const info = await img.first().evaluate((el) => {
      const im = el instanceof HTMLImageElement ? el : el.querySelector('img');
      const r = el.getBoundingClientRect();
      return { tag: el.tagName, naturalWidth: im ? im.naturalWidth : -1, complete: im ? im.complete : true, w: r.width, h: r.height };
    });
    if (info.naturalWidth !== 0 && info.complete && info.w > 0 && info.h > 0) return info;
    if (Date.now() > deadline) throw new Error(`${what} never showed pixels: ${JSON.stringify(info)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/**
 * The answer's own text, without the message's header ("LLaVA") and footer (token stats): those would make an
 * empty answer look non-empty. The contract names only the message element, so look for a body inside it.
 */
// (Written out again inside observeAssistant: functions passed to evaluate cannot share code, and the webview's
// CSP forbids eval.)
export async function messageText(locator) {
  return locator.evaluate((el) => {
    const body = el.querySelector('[data-testid="message-text"]') ?? el.querySelector('.message-body') ?? el;
    return (body.textContent ?? '').trim();
  });
}

/**
 * Records every data-state an assistant message passes through, with its text length at that moment, from
 * inside the webview (a MutationObserver sees a short "streaming" phase that polling from outside could miss).
 */
async function observeAssistant(frame) {
  await frame.locator('body').evaluate(() => {
    const w = /** @type {any} */ (window);
    const bodyOf = (el) => el.querySelector('[data-testid="message-text"]') ?? el.querySelector('.message-body') ?? el;
    w.__llavaObs?.disconnect?.();
    w.__llavaSeen = [];
    const sel = '[data-testid="message"][data-role="assistant"]';
    const note = () => {
      const all = document.querySelectorAll(sel);
      const el = all[all.length - 1];
      if (el) w.__llavaSeen.push({ count: all.length, state: el.getAttribute('data-state'), len: (bodyOf(el).textContent || '').trim().length });
    };
    w.__llavaObs = new MutationObserver((records) => {
      for (const r of records) {
        if (r.type === 'attributes' && r.attributeName === 'data-state' && r.target instanceof Element
            && r.target.matches(sel) && r.oldValue) {
          w.__llavaSeen.push({ count: -1, state: r.oldValue, len: -1, old: true });
        }
      }
      note();
    });
    w.__llavaObs.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true, attributeOldValue: true, attributeFilter: ['data-state'] });
  });
}

/** Types `question` into the question box, presses Enter, and waits for the streamed answer to finish. */
export async function askInWebview(page, frame, question, { shots, label, timeout = 180_000 }) {
  const assistant = frame.locator('[data-testid="message"][data-role="assistant"]');
  const user = frame.locator('[data-testid="message"][data-role="user"]');
  const before = await assistant.count();
  const usersBefore = await user.count();
  await observeAssistant(frame);

  const box = frame.locator('[data-testid="question"]');
  await box.waitFor({ state: 'visible', timeout: 30_000 });
  // vscode-textarea is a web component: type into the <textarea> in its (open) shadow root.
  const isPlain = await box.evaluate((el) => el.tagName === 'TEXTAREA');
  const input = isPlain ? box : box.locator('textarea');
  await input.click();
  await input.fill(question);
  await shots.take(page, `${label}-typed`);
  await input.press('Enter');

  await assert.doesNotReject(
    user.nth(usersBefore).waitFor({ state: 'attached', timeout: 15_000 }),
    'Enter did not add a user message',
  );
  const userText = (await user.nth(usersBefore).textContent()) ?? '';
  assert.ok(userText.includes(question), `user message shows ${JSON.stringify(userText)}, not the question`);

  const answer = assistant.nth(before);
  await answer.waitFor({ state: 'attached', timeout: 60_000 });
  await shots.take(page, `${label}-answering`);
  const deadline = Date.now() + timeout;
  let state;
  for (;;) {
    state = await answer.getAttribute('data-state');
    if (state === 'done' || state === 'error') break;
    if (Date.now() > deadline) throw new Error(`answer still "${state}" after ${timeout / 1000} s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  await shots.take(page, `${label}-answered`);
  const text = await messageText(answer);
  const seen = await frame.locator('body').evaluate(() => /** @type {any} */ (window).__llavaSeen ?? []);
  await frame.locator('body').evaluate(() => /** @type {any} */ (window).__llavaObs?.disconnect());

  assert.equal(state, 'done', `answer ended in state "${state}": ${text.slice(0, 300)}`);
  assert.ok(text.length > 0, 'the finished answer is empty');
  assert.ok(seen.some((s) => s.state === 'streaming'), `never saw data-state="streaming": ${JSON.stringify(seen.slice(0, 20))}`);
  const partials = new Set(seen.filter((s) => s.state === 'streaming' && s.len > 0).map((s) => s.len));
  return { text, partialLengths: [...partials] };
}

/** Runs a command by its palette title (F1, type, Enter on the matching row). */
export async function runCommand(page, title) {
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input[type="text"]').first();
  await input.waitFor({ state: 'visible', timeout: 10_000 });
  await input.fill(`>${title}`);
  const row = page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: title }).first();
  await row.waitFor({ state: 'visible', timeout: 10_000 });
  await input.press('Enter');
}

/** The chat panel whose image is `name` (several panels may be open). */
export async function panelWithImage(page, name, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const outers = page.locator(`iframe.webview.ready[src*="extensionId=${EXTENSION_ID}"]:not([src*="purpose=webviewView"])`);
    const n = await outers.count();
    for (let i = n - 1; i >= 0; i--) {
      const frame = outers.nth(i).contentFrame().locator('#active-frame').contentFrame();
      if ((await frame.locator(`img[data-testid="image"][alt="${name}"]`).count().catch(() => 0)) > 0) return frame;
    }
    if (Date.now() > deadline) throw new Error(`no chat panel shows ${name}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Right-clicks `fileName` in the Explorer and chooses `menuItem` (e.g. "Ask About Image"). */
export async function explorerMenu(page, fileName, menuItem) {
  const explorer = page.locator('.explorer-folders-view');
  if (!(await explorer.isVisible())) await page.keyboard.press('Control+Shift+E');
  const row = explorer.locator('.monaco-list-row').filter({ hasText: fileName }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: menuItem });
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await new Promise((r) => setTimeout(r, 300)); // the menu takes clicks once its opening animation ends
  await item.click();
}
