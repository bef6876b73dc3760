import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProviderError } from '../../src/core/errors';
import { providerCandidates, providerUnavailableReason, sessionOptions, withProviderFallback } from '../../src/engine/providers';

test('auto tries the platform accelerator first, then CPU', () => {
  assert.deepEqual(providerCandidates('auto', 'linux', 'x64'), ['cuda', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'win32', 'x64'), ['dml', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'darwin', 'arm64'), ['coreml', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'darwin', 'x64'), ['cpu']);
  assert.deepEqual(providerCandidates('auto', 'linux', 'arm64'), ['cpu']);
  assert.deepEqual(providerCandidates('cuda', 'linux', 'x64'), ['cuda']);
});

test('unavailable providers get a readable reason', () => {
  assert.match(providerUnavailableReason('dml', 'linux', 'x64'), /only on Windows/);
  assert.match(providerUnavailableReason('cuda', 'linux', 'x64', '/nonexistent'), /CUDA provider library .* not installed.*CUDA 12.*cuDNN 9/);
  assert.equal(providerUnavailableReason('cpu', 'linux', 'x64'), '');
});

test('session options keep threads idle-friendly', () => {
  const o = sessionOptions('cpu', { threads: 2 });
  assert.deepEqual(o.executionProviders, ['cpu']);
  assert.equal(o.intraOpNumThreads, 2);
  assert.deepEqual((o.extra as any).session.intra_op, { allow_spinning: '0' });
  assert.equal(sessionOptions('cpu', {}).intraOpNumThreads, undefined);
});

test('auto falls back to CPU and reports why', async () => {
  const lines: string[] = [];
  const r = await withProviderFallback('auto', async (ep) => {
    if (ep !== 'cpu') throw new Error('libcudnn.so.9: cannot open shared object file');
    return 'ok';
  }, (l) => lines.push(l), ['coreml', 'cpu']);
  assert.equal(r.provider, 'cpu');
  assert.equal(r.value, 'ok');
  assert.match(r.fallbackReason, /coreml/);
  assert.ok(lines.some((l) => l.includes('execution provider: cpu')));
});

test('an explicit provider that fails is an error that says why, with no fallback', async () => {
  let tried: string[] = [];
  await assert.rejects(
    withProviderFallback('coreml', async (ep) => {
      tried.push(ep);
      throw new Error('CoreML EP not available');
    }, () => {}, ['coreml']),
    (err: unknown) => err instanceof ProviderError && /Could not use the coreml execution provider: .*only on macOS/.test(err.message),
  );
  assert.deepEqual(tried, []); // coreml is prechecked away on this linux machine
  tried = [];
  await assert.rejects(withProviderFallback('cuda', async () => 'never', () => {}, ['cuda']), ProviderError);
});

test('a CPU failure keeps its own error (it is the model, not the provider)', async () => {
  class Boom extends Error {}
  await assert.rejects(withProviderFallback('auto', async () => { throw new Boom('bad graph'); }, () => {}, ['cpu']), Boom);
});
