// @vscode/test-cli configuration (`npx vscode-test`) for machines that can download VS Code: the same
// extension-host suite that test/e2e runs inside code-server. Build first: `npm run build && npm run fixtures &&
// node test/integration/build.mjs`. (Offline CI uses test/e2e/run.mjs instead; see docs/ARCHITECTURE.md.)
import { defineConfig } from '@vscode/test-cli';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export default defineConfig({
  label: 'integration',
  // Registers the tests at load time; test-cli's runner has set up mocha's describe/it by then.
  files: 'dist/test/suite/tests.js',
  version: 'stable',
  extensionDevelopmentPath: '.',
  // An empty workspace folder: the host's file checks are tested against one (images.test.ts).
  workspaceFolder: mkdtempSync(join(tmpdir(), 'llava-vscode-test-ws-')),
  // A fresh user-data folder: the suite writes llava.model to the user settings.
  launchArgs: ['--disable-extensions', '--user-data-dir', mkdtempSync(join(tmpdir(), 'llava-vscode-test-'))],
  env: { LLAVA_TEST_MODEL: join(process.cwd(), 'test/fixtures/models/tiny-llava') },
  mocha: { ui: 'bdd', timeout: 180_000, color: false },
});
