// UI tests of hostile input in the chat (issue 14).
// Links (items 9-11): a KNOWN answer full of hostile links,
// Markdown images and bidi controls is injected (test-only `llava._test.injectAnswer`), then every link
// in it is clicked. Nothing may open without the host's decision: no new browser tab, ever; links the
// host refuses (javascript:, command:, file:, data:, vscode:, mailto:, loopback, private network,
// credentials) show our warning and no VS Code dialog; links it allows (http(s) to a public host) reach VS
// Code's own "open external website?" confirmation, which the test cancels.
import * as assert from 'node:assert/strict';
import { expectImageShown, panelWithImage, runCommand } from '../lib/webview.mjs';

const IMAGE = 'screenshot.png';
const GEOMETRY = {
  mode: 'pad', originalWidth: 1600, originalHeight: 900, inputWidth: 336, inputHeight: 336,
  padLeft: 0, padTop: 350, scaleX: 336 / 1600, scaleY: 336 / 1600, cropLeft: 0, cropTop: 0,
};

/** [label, href, allowed by the host] */
const LINKS = [
  ['docs', 'https://example.com/docs', true],
  ['mail', 'mailto:someone@example.com?body=secrets', false],
  ['loopback', 'http://127.0.0.1:9/steal', false],
  ['local', 'http://localhost:3000/admin', false],
  ['lan', 'http://192.168.1.1/', false],
  ['metadata', 'http://169.254.169.254/latest/meta-data', false],
  ['creds', 'https://user:pw@example.com/', false],
  ['js', 'javascript:alert(1)', false],
  ['tabjs', 'java%09script:alert(1)', false],
  ['cmd', 'command:workbench.action.terminal.new', false],
  ['file', 'file:///etc/passwd', false],
  ['vscode', 'vscode://file/etc/passwd', false],
  ['data', 'data:text/html,<script>alert(1)</script>', false],
];

const ANSWER = [
  'Here are some links:',
  ...LINKS.map(([label, href]) => `- [${label}](${href.replace(/\)/g, '%29')})`),
  '',
  'Autolinked: https://example.org/auto and an image ![tracker](https://evil.example/pixel.png) inline.',
  '',
  'Reversed: \u202Egnp.exe\nnext line stays in order.',
].join('\n');

const dialog = (page) => page.locator('.monaco-dialog-box');

export async function hostileLinksNeedTheHost({ page, shots }) {
  await runCommand(page, 'Test: Inject Answer with Boxes');
  const box = page.locator('.quick-input-widget input[type="text"]').first();
  await box.waitFor({ state: 'visible', timeout: 10_000 });
  await box.fill(JSON.stringify({ image: IMAGE, question: 'Links?', answer: ANSWER, geometry: GEOMETRY, frame: 'norm1' }));
  await box.press('Enter');

  const frame = await panelWithImage(page, IMAGE);
  await expectImageShown(frame);
  const answer = frame.locator('[data-testid="message"][data-role="assistant"]').last();
  await answer.locator('a[data-href]').first().waitFor({ state: 'attached', timeout: 15_000 });
  await shots.take(page, 'links-answer');

  // nothing in the answer can be followed by the browser or VS Code's webview link handler
  const dom = await answer.evaluate((el) => ({
    hrefs: el.querySelectorAll('a[href]').length,
    imgs: el.querySelectorAll('img').length,
    links: [...el.querySelectorAll('a[data-href]')].map((a) => a.getAttribute('data-href')),
    text: el.querySelector('.message-body')?.textContent ?? '',
    blocksAuto: [...el.querySelectorAll('.message-body p')].every((p) => p.getAttribute('dir') === 'auto'),
  }));
  assert.equal(dom.hrefs, 0, 'an <a href> in the answer');
  assert.equal(dom.imgs, 0, 'an <img> made from the answer');
  assert.ok(dom.text.includes('[U+202E]') && !dom.text.includes('\u202E'), 'the RLO is shown, not obeyed');
  assert.ok(dom.blocksAuto, 'every paragraph has dir=auto');
  // markdown-it itself leaves javascript:, vbscript:, file: and data: links as plain text; every other one is a link
  const asText = LINKS.filter(([, h]) => /^(javascript|vbscript|file|data):/i.test(decodeURIComponent(h).replace(/[\s\x00-\x1f]/g, '')));
  const expected = LINKS.filter((l) => !asText.includes(l)).map(([, h]) => h);
  for (const h of expected) assert.ok(dom.links.includes(h), `not rendered as a link: ${h} (links: ${dom.links.join(' ')})`);
  for (const [label] of asText) assert.ok(dom.text.includes(label), `${label} shown as text`);
  assert.ok(dom.links.includes('https://example.org/auto') && dom.links.includes('https://evil.example/pixel.png'), `autolink and image: ${dom.links.join(' ')}`);

  const context = page.context();
  const pagesBefore = context.pages().length;
  let opened = 0;
  const onPage = () => opened++;
  context.on('page', onPage);
  const results = [];
  try {
    const anchors = answer.locator('a[data-href]');
    const n = await anchors.count();
    for (let i = 0; i < n; i++) {
      const href = await anchors.nth(i).getAttribute('data-href');
      const known = LINKS.find(([, h]) => h === href);
      const allowed = known ? known[2] : /^https:\/\/(example\.org|evil\.example)\//.test(href);
      await anchors.nth(i).click();
      // the host answers either way: VS Code's confirmation for an allowed link, our warning for a refused one
      const deadline = Date.now() + 5_000;
      let sawDialog = false;
      while (Date.now() < deadline) {
        if (await dialog(page).isVisible().catch(() => false)) {
          sawDialog = true;
          break;
        }
        if (!allowed && Date.now() > deadline - 3_500) break; // refused: give a dialog 1.5 s to (wrongly) appear
        await new Promise((r) => setTimeout(r, 100));
      }
      if (sawDialog) {
        const dialogText = (await dialog(page).textContent()) ?? '';
        await shots.take(page, `link-dialog-${i}`);
        await page.keyboard.press('Escape');
        await dialog(page).waitFor({ state: 'hidden', timeout: 5_000 });
        assert.ok(allowed, `a dialog for the refused link ${href}: ${dialogText.slice(0, 200)}`);
      } else {
        assert.ok(!allowed, `no VS Code confirmation for the allowed link ${href}`);
      }
      assert.equal(opened, 0, `a browser tab opened after clicking ${href}`);
      assert.equal(context.pages().length, pagesBefore, `a page opened after clicking ${href}`);
      results.push(`${allowed ? 'confirm' : 'refused'}:${href.slice(0, 24)}`);
    }
    // middle click and keyboard activation take the same path
    await anchors.first().click({ button: 'middle' });
    await new Promise((r) => setTimeout(r, 1_000));
    assert.equal(opened, 0, 'a middle click opened a tab');
    assert.ok(!(await dialog(page).isVisible().catch(() => false)), 'a middle click asked to open');
  } finally {
    context.off('page', onPage);
    if (await dialog(page).isVisible().catch(() => false)) await page.keyboard.press('Escape');
  }
  await shots.take(page, 'links-done');
  return `${results.length} links clicked, 0 tabs opened; ${results.filter((r) => r.startsWith('confirm')).length} reached VS Code's confirmation, the rest were refused by the host`;
}

/**
 * Two questions sent back to back (Enter, type, Enter at once) start ONE answer: the webview is busy from
 * the first Enter, not from the host's reply, and the host refuses a second answer before its first await.
 * The second question stays in the box, unsent.
 */
export async function quickEntersStartOneAnswer({ page }) {
  const frame = await panelWithImage(page, IMAGE);
  const answers = frame.locator('[data-testid="message"][data-role="assistant"]');
  const users = frame.locator('[data-testid="message"][data-role="user"]');
  const before = { answers: await answers.count(), users: await users.count() };
  const box = frame.locator('[data-testid="question"]');
  const input = (await box.evaluate((el) => el.tagName === 'TEXTAREA')) ? box : box.locator('textarea');
  // both Enters in one task of the webview: no message from the host can arrive in between (a user's
  // fast double Enter, or Enter then a pasted second question, races the host's 'busy' just the same)
  await input.evaluate((el) => {
    const enter = () => el.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
    el.value = 'first question';
    enter();
    el.value = 'second question';
    enter();
  });
  await answers.nth(before.answers).waitFor({ state: 'attached', timeout: 15_000 });
  const deadline = Date.now() + 60_000;
  while (!['done', 'error', 'stopping'].includes(await answers.nth(before.answers).getAttribute('data-state'))) {
    assert.ok(Date.now() < deadline, 'the answer did not finish');
    await new Promise((r) => setTimeout(r, 200));
  }
  await new Promise((r) => setTimeout(r, 1_000));
  assert.equal(await answers.count(), before.answers + 1, 'two answers started');
  assert.equal(await users.count(), before.users + 1, 'two questions sent');
  assert.equal(await input.inputValue(), 'second question', 'the second question was lost instead of kept in the box');
  await input.fill('');
  return 'one answer; the second question stayed in the box';
}

export const hostileUiTests = [
  ['Links: every link of a hostile answer goes through the host; nothing opens on its own', hostileLinksNeedTheHost],
  ['Busy: two quick Enters start one answer', quickEntersStartOneAnswer],
];
