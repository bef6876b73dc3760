// Entry point VS Code calls inside the extension host (extensionTestsPath): runs the mocha suite, prints one line
// per test and a closing `N passed, N failed`, and rejects when anything failed so the host exits non-zero.
import Mocha from 'mocha';
import { defineActivationTests } from './activation.test';
import { defineAskTests } from './ask.test';
import { defineToolTests } from './tools.test';
import { defineAltTextTests } from './altText.test';
import { defineImageFileTests } from './images.test';

/**
 * Reports through console.log: the extension host forwards console output to the test runner
 * (codeAutomationLog in the browser workbench, stdout under test-electron); process.stdout may go nowhere.
 */
class LineReporter extends Mocha.reporters.Base {
  constructor(runner: Mocha.Runner, options?: Mocha.MochaOptions) {
    super(runner, options);
    const { EVENT_TEST_PASS, EVENT_TEST_FAIL, EVENT_SUITE_BEGIN } = Mocha.Runner.constants;
    runner.on(EVENT_SUITE_BEGIN, (suite: Mocha.Suite) => {
      if (suite.title) console.log(`[suite] ${suite.fullTitle()}`);
    });
    runner.on(EVENT_TEST_PASS, (test: Mocha.Test) => console.log(`  ok   ${test.fullTitle()} (${test.duration} ms)`));
    runner.on(EVENT_TEST_FAIL, (test: Mocha.Test, err: Error) => {
      console.log(`  FAIL ${test.fullTitle()}\n       ${String(err?.stack ?? err).split('\n').join('\n       ')}`);
    });
  }
}

export async function run(): Promise<void> {
  const mocha = new Mocha({ ui: 'bdd', timeout: 60_000, color: false, reporter: LineReporter as never });
  // Expose describe/it/before to the test modules (what `mocha.addFile` does for files it loads itself);
  // the tests are bundled, so they register through these functions instead of being required by path.
  mocha.suite.emit('pre-require', globalThis, 'llava-integration', mocha);
  defineActivationTests();
  defineAskTests();
  defineToolTests();
  defineAltTextTests();
  defineImageFileTests();

  const { passed, failed } = await new Promise<{ passed: number; failed: number }>((resolve) => {
    const runner = mocha.run(() => resolve({ passed: runner.stats?.passes ?? 0, failed: runner.stats?.failures ?? 0 }));
  });
  console.log(`${passed} passed, ${failed} failed`);
  if (failed > 0 || passed === 0) throw new Error(`${failed} test(s) failed, ${passed} passed`);
}
