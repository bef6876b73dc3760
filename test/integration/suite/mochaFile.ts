// The same tests as a plain mocha file, for runners that load test files themselves and set up describe/it first
// (@vscode/test-cli via .vscode-test.mjs). index.ts is the entry for hosts that call run() (code-server, test/e2e).
import { defineActivationTests } from './activation.test';
import { defineAskTests } from './ask.test';
import { defineToolTests } from './tools.test';
import { defineAltTextTests } from './altText.test';

defineActivationTests();
defineAskTests();
defineToolTests();
defineAltTextTests();
