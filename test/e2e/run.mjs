#!/usr/bin/env node
// Entry point of `npm run test:e2e`: the extension in a real VS Code workbench (code-server) driven by
// Debian's Chromium. (a) the extension-host mocha suite (test/integration), (b) Playwright UI tests.
// Prints one line per test and a closing `N passed, N failed`; exits non-zero on any failure.
//
//   node test/e2e/run.mjs [--only=host|ui] [--first-run-only] [--keep] [--extension=DIR] [--model=DIR]
//
// Needs: test/e2e/setup.sh done, `npm run build` (dist/extension.js), `npm run fixtures` (the tiny model).
// Artifacts (screenshots, code-server and suite logs, VS Code's logs) go to test/e2e/artifacts/.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, startCodeServer } from './lib/codeServer.mjs';
import { stubHub } from './lib/stubHub.mjs';
import { runHostSuite } from './lib/hostSuite.mjs';
import { isNoise, launchBrowser, Shots, waitForWorkbench, workbenchUrl } from './lib/workbench.mjs';
import { makeSandbox } from './lib/workspace.mjs';
import { llavaActivityItem, uiTests } from './ui/chat.mjs';
import { overlayTests } from './ui/overlay.mjs';
import { altTextTests } from './ui/altText.mjs';
import { hostileUiTests } from './ui/hostile.mjs';
import { firstRunTests } from './ui/firstRun.mjs';
import { captionTests } from './ui/captions.mjs';
import { builtinTests } from './ui/builtin.mjs';

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO = path.resolve(E2E_DIR, '../..');
const ARTIFACTS = path.join(E2E_DIR, 'artifacts');
const WHOLE_RUN_LIMIT_MS = 10 * 60_000;
const UI_TEST_LIMIT_MS = 4 * 60_000;

const args = Object.fromEntries(process.argv.slice(2).map((a) => {
  const m = a.match(/^--([^=]+)(?:=(.*))?$/);
  if (!m) throw new Error(`unknown argument ${a}`);
  return [m[1], m[2] ?? true];
}));
const only = args.only; // 'host' | 'ui' | undefined (both)
// --grep=REGEX: only the UI tests whose names match (a window with none is not opened)
const grep = typeof args.grep === 'string' ? new RegExp(args.grep, 'i') : undefined;
const extensionPath = path.resolve(args.extension ?? REPO);
const modelDir = path.resolve(args.model ?? path.join(REPO, 'test/fixtures/models/tiny-llava'));
const testsPath = path.join(extensionPath, 'dist/test/suite/index.js');

const results = []; // { name, ok, detail }
function record(name, ok, detail = '') {
  results.push({ name, ok, detail });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` — ${detail}` : ''}`);
}

function preflight() {
  const problems = [];
  const main = JSON.parse(fs.readFileSync(path.join(extensionPath, 'package.json'), 'utf8')).main ?? 'extension.js';
  if (!fs.existsSync(path.join(extensionPath, main))) problems.push(`${main} is missing: run \`npm run build\``);
  if (!fs.existsSync(path.join(modelDir, 'config.json'))) problems.push(`no tiny model at ${modelDir}: run \`npm run fixtures\``);
  if (!fs.existsSync(path.join(E2E_DIR, 'node_modules/code-server'))) problems.push('code-server missing: run `bash test/e2e/setup.sh`');
  if (problems.length) {
    for (const p of problems) console.error(`[e2e] ${p}`);
    process.exit(2);
  }
  if (only !== 'ui') {
    // Always rebuild the suite bundle (a second or two) so it never runs stale code.
    const r = spawnSync(process.execPath, [path.join(REPO, 'test/integration/build.mjs'), `--outdir=${path.dirname(testsPath)}`], { stdio: 'inherit' });
    if (r.status !== 0) { console.error('[e2e] building the integration suite failed'); process.exit(2); }
  }
}

async function main() {
  preflight();
  fs.rmSync(ARTIFACTS, { recursive: true, force: true });
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const shots = new Shots(ARTIFACTS);
  const sandbox = await makeSandbox({ repoRoot: REPO, modelDir });
  console.log(`[e2e] sandbox ${sandbox.root}; workspace images: ${sandbox.images.join(', ')}`);

  let server;
  let context;
  // the Hugging Face Hub as the extension sees it (HF_ENDPOINT): a loopback port the first-run tests
  // close (offline) or hold open without answering (a hanging download)
  const hub = stubHub(await freePort());
  const stopAll = async () => {
    await context?.close().catch(() => {});
    context = undefined;
    await server?.stop();
    server = undefined;
    await hub.mode('closed');
  };
  // Whatever happens (Ctrl+C, a hung step), code-server's process group is stopped before we exit.
  const onSignal = async (sig) => { console.error(`[e2e] ${sig}: stopping`); await stopAll(); process.exit(130); };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(async () => {
    console.error(`[e2e] whole run exceeded ${WHOLE_RUN_LIMIT_MS / 60_000} min: stopping`);
    await stopAll();
    process.exit(3);
  }, WHOLE_RUN_LIMIT_MS);

  try {
    const t0 = Date.now();
    server = await startCodeServer({
      e2eDir: E2E_DIR, sandbox, logFile: path.join(ARTIFACTS, 'code-server.log'),
      env: { LLAVA_TEST_MODEL: modelDir, LLAVA_TEST_HOOKS: '1', HF_ENDPOINT: hub.url },
    });
    console.log(`[e2e] code-server on ${server.url} (${Date.now() - t0} ms)`);
    context = await launchBrowser(sandbox.browserProfile);

    if (only !== 'ui') {
      console.log('[e2e] extension-host suite');
      const r = await runHostSuite({
        context, baseUrl: server.url, folder: sandbox.workspace, extensionPath, testsPath,
        logFile: path.join(ARTIFACTS, 'host-suite.log'), shots,
      });
      // The suite's own tests count individually; a missing summary or bad exit code was added as a failure.
      for (let i = 0; i < r.passed; i++) results.push({ name: 'host', ok: true });
      for (let i = 0; i < r.failed; i++) results.push({ name: 'host', ok: false });
      console.log(`${r.failed === 0 ? 'ok  ' : 'FAIL'} extension-host suite — ${r.passed} passed, ${r.failed} failed, exit code ${r.exitCode}`);
    }

    if (only !== 'host') await runUiTests({ context, server, sandbox, shots, hub });
  } catch (e) {
    record('e2e harness', false, e?.stack ?? String(e));
  } finally {
    clearTimeout(watchdog);
    await stopAll();
    copyVsCodeLogs(sandbox);
    if (args.keep) console.log(`[e2e] kept ${sandbox.root}`);
    else sandbox.cleanup();
  }
  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`[e2e] artifacts in ${path.relative(process.cwd(), ARTIFACTS) || ARTIFACTS}`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 || passed === 0 ? 1 : 0;
}

async function runUiTests({ context, server, sandbox, shots, hub }) {
  // The first-run tests get a window of their own (its own extension host and webviews): they start from the
  // fresh profile with no model and leave the tiny model configured; the other tests then start clean.
  await runInWindow({ context, server, sandbox, shots, hub }, firstRunTests, 'first-run');
  if (!args['first-run-only']) await runInWindow({ context, server, sandbox, shots, hub }, [...uiTests, ...overlayTests, ...captionTests, ...altTextTests, ...hostileUiTests, ...builtinTests], 'workbench');
}

async function runInWindow({ context, server, sandbox, shots, hub }, allTests, label) {
  const tests = grep ? allTests.filter(([name]) => grep.test(name)) : allTests;
  if (tests.length === 0) return;
  const page = await context.newPage();
  const consoleLog = path.join(ARTIFACTS, 'browser-console.log');
  page.on('console', (m) => { if (!isNoise(m.text())) fs.appendFileSync(consoleLog, `[${m.type()}] ${m.text()}\n`); });
  page.on('pageerror', (e) => fs.appendFileSync(consoleLog, `[pageerror] ${e.message}\n`));
  const t0 = Date.now();
  await page.goto(workbenchUrl(server.url, { folder: sandbox.workspace, extensionPath }), { timeout: 60_000 });
  await waitForWorkbench(page);
  // Menus built before the workbench has read our manifest lack our items: wait for our activity-bar entry,
  // then for our commands (a later window may show the activity-bar entry from cached state before its
  // extension host has the extension; it is reloaded once if the commands never come).
  await llavaActivityItem(page).waitFor({ state: 'visible', timeout: 60_000 });
  if (!(await extensionRegistered(page, 30_000))) {
    console.log(`[e2e] ${label} window: the extension's commands did not appear; reloading the window`);
    await page.reload({ timeout: 60_000 });
    await waitForWorkbench(page);
    if (!(await extensionRegistered(page, 60_000))) throw new Error(`${label} window: the extension never registered its commands`);
  }
  console.log(`[e2e] ${label} window: workbench with the extension ready (${Date.now() - t0} ms)`);
  await shots.take(page, `${label}-workbench-ready`);

  for (const [name, fn] of tests) {
    const started = Date.now();
    try {
      const detail = await withTimeout(fn({ page, shots, images: sandbox.images, workspace: sandbox.workspace, sandbox, hub, modelDir }), UI_TEST_LIMIT_MS, name);
      record(name, true, `${detail} (${Date.now() - started} ms)`);
    } catch (e) {
      await shots.take(page, 'FAILED');
      await dumpFrames(page, path.join(ARTIFACTS, 'failed-frames.txt'), name);
      record(name, false, e?.stack ?? String(e));
    }
  }
  await page.close().catch(() => {});
}

/** Whether the palette lists our commands (the extension host of this window has the extension). */
async function extensionRegistered(page, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  const input = page.locator('.quick-input-widget input[type="text"]').first();
  while (Date.now() < deadline) {
    await page.keyboard.press('F1');
    if (await input.waitFor({ state: 'visible', timeout: 3_000 }).then(() => true, () => false)) {
      await input.fill('>LLaVA: Ask About Image');
      const found = await page.locator('.quick-input-widget .monaco-list-row').filter({ hasText: 'LLaVA: Ask About Image' }).first()
        .waitFor({ state: 'visible', timeout: 2_000 }).then(() => true, () => false);
      await page.keyboard.press('Escape');
      if (found) return true;
    }
    await new Promise((r) => setTimeout(r, 1000));
  }
  return false;
}

/** On failure: every frame's URL and the start of its body, to tell "webview never loaded" from "wrong content". */
async function dumpFrames(page, file, title) {
  const out = [`== ${title}`];
  for (const f of page.frames()) {
    const body = await f.evaluate(() => document.body?.innerHTML.slice(0, 400) ?? '(no body)').catch((e) => `(${e.message.split('\n')[0]})`);
    out.push(`-- ${f.url().slice(0, 300)}\n${body}`);
  }
  fs.appendFileSync(file, out.join('\n') + '\n');
}

function withTimeout(promise, ms, what) {
  let timer;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`${what}: over ${ms / 1000} s`)), ms); }),
  ]);
}

/** VS Code's own logs (extension host, the extension's output channel) are the first thing to read on failure. */
function copyVsCodeLogs(sandbox) {
  const logs = path.join(sandbox.userData, 'logs');
  if (fs.existsSync(logs)) fs.cpSync(logs, path.join(ARTIFACTS, 'vscode-logs'), { recursive: true });
}

await main();
