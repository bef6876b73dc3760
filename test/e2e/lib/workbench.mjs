// Browser side: Debian's Chromium through playwright-core, and the workbench URL that carries VS Code's
// integration-test payload (code-server rejects --extensionDevelopmentPath on its command line, but the browser
// workbench honours the same settings passed in the URL).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.LLAVA_E2E_CHROMIUM || '/usr/bin/chromium';

export async function launchBrowser(profileDir) {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}; run test/e2e/setup.sh`);
  fs.mkdirSync(profileDir, { recursive: true });
  // A persistent context because Playwright refuses --user-data-dir in args; the profile is fresh per run.
  return chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    // Playwright's own SIGINT/SIGTERM handlers would race with ours; run.mjs closes the browser itself.
    handleSIGINT: false,
    handleSIGTERM: false,
    handleSIGHUP: false,
    viewport: { width: 1400, height: 900 },
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync',
      // No crash-report database in ~/.config/chromium.
      '--disable-crash-reporter', '--disable-breakpad',
    ],
  });
}

/**
 * @param {string} base  http://127.0.0.1:PORT
 * @param {{ folder: string, extensionPath: string, testsPath?: string }} o
 */
export function workbenchUrl(base, { folder, extensionPath, testsPath }) {
  const remote = (p) => `vscode-remote://${new URL(base).host}${p}`;
  const payload = [['extensionDevelopmentPath', remote(extensionPath)], ['skipWelcome', 'true']];
  if (testsPath) payload.push(['extensionTestsPath', remote(testsPath)]);
  return `${base}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}

/** Messages the workbench logs that say nothing about our extension (offline gallery, missing vsda). */
export function isNoise(text) {
  return /vsda|gallery|marketplace|ERR_NAME_NOT_RESOLVED|ERR_INTERNET_DISCONNECTED|favicon|manifest\.json/i.test(text);
}

export async function waitForWorkbench(page, timeoutMs = 60_000) {
  await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: timeoutMs });
}

export class Shots {
  constructor(dir) {
    this.dir = dir;
    this.n = 0;
    fs.mkdirSync(dir, { recursive: true });
  }
  async take(page, name) {
    const file = path.join(this.dir, `${String(++this.n).padStart(2, '0')}-${name}.png`);
    try {
      await page.screenshot({ path: file, timeout: 10_000 });
    } catch (e) {
      console.log(`  (screenshot ${name} failed: ${e.message.split('\n')[0]})`);
    }
    return file;
  }
}
