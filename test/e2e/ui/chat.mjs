// UI tests in the real workbench: the Explorer context menu opens a chat panel about a PNG, and the side-bar
// chat view answers about the active image. Each test gets the page with the workbench already loaded.
import * as assert from 'node:assert/strict';
import { askInWebview, expectImageShown, messageText, panelFrame, viewFrame } from '../lib/webview.mjs';

const QUESTION = 'What is in this image?';

/** The extension's activity-bar entry; its presence means the workbench has read our contributions. */
export function llavaActivityItem(page) {
  return page.locator('.part.activitybar .action-item .action-label[aria-label*="LLaVA" i]').first();
}

async function explorerRow(page, fileName) {
  const explorer = page.locator('.explorer-folders-view');
  if (!(await explorer.isVisible())) {
    await page.keyboard.press('Control+Shift+E');
    await explorer.waitFor({ state: 'visible', timeout: 15_000 });
  }
  const row = explorer.locator('.monaco-list-row').filter({ hasText: fileName }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  return row;
}

export async function explorerAskAboutImage({ page, shots, images }) {
  const png = images.find((f) => f.toLowerCase().endsWith('.png'));
  assert.ok(png, 'the workspace has no PNG');
  const row = await explorerRow(page, png);
  await row.click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: 'Ask About Image' });
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await shots.take(page, 'explorer-context-menu');
  await item.click();

  const frame = panelFrame(page);
  const info = await expectImageShown(frame);
  await shots.take(page, 'panel-opened');
  const tabTitle = ((await page.locator('.tabs-container .tab.active').textContent()) ?? '').trim();

  const { text, partialLengths } = await askInWebview(page, frame, QUESTION, { shots, label: 'panel' });
  return `tab "${tabTitle}"; image ${info.naturalWidth}px wide; answer ${text.length} chars, ${partialLengths.length} partial renders`;
}

export async function sideViewAskAboutActiveImage({ page, shots, images }) {
  // Open the other image in an editor so it becomes the active image the side view follows.
  const other = images[images.length - 1];
  const row = await explorerRow(page, other);
  await row.dblclick();
  await page.locator('.tabs-container .tab.active').filter({ hasText: other }).waitFor({ timeout: 15_000 });
  // Let the built-in image preview (itself a webview) finish loading before our view starts: code-server serves
  // every webview from one origin and one service worker, and webviews that start loading at the same moment can
  // lose their resource requests ("Found unexpected service worker controller"), leaving one of them blank.
  // Desktop VS Code gives each webview its own origin, so this wait is about the harness, not the extension.
  await expectImageShown(
    page.locator('iframe.webview.ready[src*="extensionId=vscode.media-preview"]').last().contentFrame()
      .locator('#active-frame').contentFrame(),
    { selector: 'img', what: `the built-in preview of ${other}` },
  );

  await llavaActivityItem(page).click();
  const frame = viewFrame(page);
  const info = await expectImageShown(frame);
  await shots.take(page, 'side-view-image');
  const status = frame.locator('[data-testid="status"]');
  assert.ok(await status.count() > 0, 'the side view has no status line');

  const { text, partialLengths } = await askInWebview(page, frame, QUESTION, { shots, label: 'side-view' });
  return `image ${info.naturalWidth}px wide; answer ${text.length} chars, ${partialLengths.length} partial renders`;
}

export async function stopEndsStreaming({ page, shots }) {
  // Runs after the side-view test: the view is open and the model is loaded, so the answer streams at once.
  const frame = viewFrame(page);
  const assistant = frame.locator('[data-testid="message"][data-role="assistant"]');
  const box = frame.locator('[data-testid="question"]');
  const input = (await box.evaluate((el) => el.tagName === 'TEXTAREA')) ? box : box.locator('textarea');
  // The tiny test model can finish a whole answer between two polls on a loaded machine; an answer
  // that ended before Stop could be clicked is not a failure of Stop, so ask again (at most 3 times).
  let answer;
  let shownAtStop;
  for (let attempt = 1; ; attempt++) {
    const before = await assistant.count();
    await input.fill('Describe this image in detail.');
    await input.press('Enter');
    answer = assistant.nth(before);
    await answer.waitFor({ state: 'attached', timeout: 30_000 });
    // Click Stop as soon as some text has streamed in.
    const deadline = Date.now() + 30_000;
    let state;
    while ((state = await answer.getAttribute('data-state')) === 'streaming') {
      if ((await messageText(answer)).length > 0) break;
      assert.ok(Date.now() < deadline, 'no text streamed within 30 s');
      await new Promise((r) => setTimeout(r, 50));
    }
    if (state === 'streaming') {
      shownAtStop = await messageText(answer);
      const clicked = await frame.locator('[data-testid="stop"]').click({ timeout: 3_000 }).then(() => true, (e) => e);
      if (clicked === true) break;
      state = await answer.getAttribute('data-state');
      // Stop hidden while the answer still streams is a real failure
      if (state === 'streaming') throw clicked;
    }
    assert.ok(attempt < 3, `the answer left "streaming" (now "${state}") before Stop could be clicked, 3 times`);
    await frame.locator('[data-testid="send"]:not([disabled])').waitFor({ timeout: 30_000 });
  }
  await shots.take(page, 'stop-clicked');
  const stopDeadline = Date.now() + 10_000;
  let state;
  while ((state = await answer.getAttribute('data-state')) === 'streaming') {
    assert.ok(Date.now() < stopDeadline, 'the answer is still streaming 10 s after Stop');
    await new Promise((r) => setTimeout(r, 100));
  }
  const len = (await messageText(answer)).length;
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal((await messageText(answer)).length, len, 'text kept arriving after Stop');
  // A stopped answer keeps what was already shown (the words stay; only what had not streamed yet is lost).
  const final = await messageText(answer);
  assert.ok(final.startsWith(shownAtStop.slice(0, Math.max(0, shownAtStop.length - 1))),
    `Stop erased the partial answer: ${JSON.stringify(shownAtStop.slice(0, 80))} was shown, ${JSON.stringify(final.slice(0, 80))} remains`);
  await shots.take(page, 'stopped');
  return `ended in state "${state}" with ${len} chars`;
}

export const uiTests = [
  ['Explorer context menu: Ask About Image opens a chat panel that streams an answer', explorerAskAboutImage],
  ['Side-bar chat view: follows the active image and streams an answer', sideViewAskAboutActiveImage],
  ['Stop ends a streaming answer and no more text arrives', stopEndsStreaming],
];
