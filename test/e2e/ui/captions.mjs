// Caption Images from the Explorer says where the captions went (with Reveal in Explorer / Open First Caption),
// and a rerun that has nothing to do says so in words (issue 15, item 11). Tiny model on the CPU.
import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function toastWith(page, pattern, timeout = 120_000) {
  const toast = page.locator('.notifications-toasts .notification-toast').filter({ hasText: pattern }).last();
  await toast.waitFor({ state: 'visible', timeout });
  return toast;
}

async function captionFolder(page, folder) {
  const explorer = page.locator('.explorer-folders-view');
  if (!(await explorer.isVisible())) await page.keyboard.press('Control+Shift+E');
  const row = explorer.locator('.monaco-list-row').filter({ hasText: folder }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await row.click({ button: 'right' });
  const item = page.getByRole('menuitem', { name: 'Caption Images…' });
  await item.waitFor({ state: 'visible', timeout: 10_000 });
  await sleep(300);
  await item.click();
  const input = page.locator('.quick-input-widget input[type="text"]').first();
  // preset: Short caption; start with: nothing; output: sidecar text files
  for (const step of ['Short caption', '', 'Sidecar text files']) {
    await input.waitFor({ state: 'visible', timeout: 15_000 });
    if (step) await page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: step }).first().waitFor({ timeout: 10_000 });
    await sleep(200);
    await input.press('Enter');
    await sleep(300);
  }
}

export async function captionsSayWhereTheyWent({ page, shots, sandbox, images }) {
  const folder = path.join(sandbox.workspace, 'photos');
  fs.mkdirSync(folder, { recursive: true });
  for (const f of images) fs.copyFileSync(path.join(sandbox.workspace, f), path.join(folder, f));
  await sleep(1500); // the Explorer shows the new folder
  await captionFolder(page, 'photos');
  const done = await toastWith(page, /captioned \d+ of \d+ image/);
  const text = ((await done.textContent()) ?? '').replace(/\s+/g, ' ');
  await shots.take(page, 'captions-done');
  assert.match(text, new RegExp(`captioned ${images.length} of ${images.length} image`), text);
  assert.match(text, /Captions are in \.txt files next to the images/, text);
  for (const label of ['Open First Caption', 'Reveal in Explorer']) {
    assert.ok(await done.getByRole('button', { name: label }).count() > 0, `no "${label}" on: ${text}`);
  }
  for (const f of images) assert.ok(fs.existsSync(path.join(folder, f.replace(/\.[^.]+$/, '.txt'))), `no caption for ${f}`);
  // Open First Caption shows a caption file
  await done.getByRole('button', { name: 'Open First Caption' }).click();
  await page.locator('.tabs-container .tab.active').filter({ hasText: '.txt' }).waitFor({ timeout: 10_000 });

  // the same run again: every image already has a caption, so nothing is done, and it says so
  await captionFolder(page, 'photos');
  const skip = page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: 'Skip them' }).first();
  await skip.waitFor({ state: 'visible', timeout: 15_000 });
  await page.locator('.quick-input-widget input[type="text"]').first().press('Enter');
  const nothing = await toastWith(page, /nothing to do/);
  const text2 = ((await nothing.textContent()) ?? '').replace(/\s+/g, ' ');
  await shots.take(page, 'captions-nothing-to-do');
  assert.match(text2, new RegExp(`all ${images.length} image\\(s\\) already have captions`), text2);
  assert.match(text2, /Overwrite them/, text2);
  return `${text.slice(0, 120)} | ${text2.slice(0, 120)}`;
}

export const captionTests = [['Caption Images says where the captions went; a rerun with nothing to do says so', captionsSayWhereTheyWent]];
