// Runs the mocha suite inside the workbench's extension host, as @vscode/test-electron would: the URL payload
// names the suite, and the workbench reports the suite's console output and exit code through the
// codeAutomationLog / codeAutomationExit hooks that we expose on the page before it loads.
import * as fs from 'node:fs';
import { isNoise, waitForWorkbench, workbenchUrl } from './workbench.mjs';

const SUMMARY = /^(\d+) passed, (\d+) failed$/m;

/**
 * @returns {Promise<{ passed: number, failed: number, exitCode: number|undefined, output: string }>}
 */
export async function runHostSuite({ context, baseUrl, folder, extensionPath, testsPath, logFile, shots, timeoutMs = 300_000 }) {
  if (!fs.existsSync(testsPath)) throw new Error(`suite bundle missing: ${testsPath} (node test/integration/build.mjs)`);
  const page = await context.newPage();
  const lines = [];
  const say = (line) => {
    lines.push(line);
    fs.appendFileSync(logFile, line + '\n');
    console.log(`  | ${line}`);
  };
  let resolveExit;
  const exited = new Promise((r) => (resolveExit = r));
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const text = (Array.isArray(args) ? args : [args]).map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' ');
    // Judge noise on the whole message, so a noisy error's stack lines go with it.
    if (!isNoise(text)) for (const l of text.split('\n')) say(l);
  });
  await page.exposeFunction('codeAutomationExit', (code) => resolveExit(code));
  page.on('pageerror', (e) => fs.appendFileSync(logFile, `[pageerror] ${e.message}\n`));

  let exitCode;
  try {
    await page.goto(workbenchUrl(baseUrl, { folder, extensionPath, testsPath }), { timeout: 60_000 });
    await waitForWorkbench(page);
    await shots.take(page, 'host-suite-workbench');
    let timer;
    exitCode = await Promise.race([
      exited,
      new Promise((r) => { timer = setTimeout(() => r(undefined), timeoutMs); }),
    ]);
    clearTimeout(timer);
    if (exitCode === undefined) say(`[e2e] the extension-host suite did not finish within ${timeoutMs / 1000} s`);
  } finally {
    await page.close().catch(() => {});
  }
  const output = lines.join('\n');
  const m = output.match(SUMMARY);
  let passed = m ? Number(m[1]) : 0;
  let failed = m ? Number(m[2]) : 0;
  // A crash, a timeout, or an exit code that contradicts the summary counts as one more failure.
  if (!m || exitCode !== 0) {
    if (!(m && failed > 0 && exitCode !== 0)) failed += 1;
    if (!m) say(`[e2e] no "N passed, N failed" line from the suite (exit code ${exitCode})`);
  }
  return { passed, failed, exitCode, output };
}
