// UI tests in the real workbench: the Explorer context menu opens a chat panel about a PNG, and the side-bar
// chat view answers about the active image. Each test gets the page with the workbench already loaded.
import * as assert from 'node:assert/strict';
import { askInWebview, expectImageShown, panelFrame, viewFrame } from '../lib/webview.mjs';

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
  await page.locator('.editor-instance iframe, .editor-instance img').first().waitFor({ state: 'attached', timeout: 15_000 });

  await llavaActivityItem(page).click();
  const frame = viewFrame(page);
  const info = await expectImageShown(frame);
  await shots.take(page, 'side-view-image');
  const status = frame.locator('[data-testid="status"]');
  assert.ok(await status.count() > 0, 'the side view has no status line');

  const { text, partialLengths } = await askInWebview(page, frame, QUESTION, { shots, label: 'side-view' });
  return `image ${info.naturalWidth}px wide; answer ${text.length} chars, ${partialLengths.length} partial renders`;
}

export const uiTests = [
  ['Explorer context menu: Ask About Image opens a chat panel that streams an answer', explorerAskAboutImage],
  ['Side-bar chat view: follows the active image and streams an answer', sideViewAskAboutActiveImage],
];
