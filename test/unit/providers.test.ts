import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ProviderError } from '../../src/core/errors';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  linuxGpuPresent,
  providerCandidates,
  providerUnavailableReason,
  sessionOptions,
  vulkanLoaderPresent,
  webgpuFailureInWords,
  withProviderFallback,
} from '../../src/engine/providers';

test('auto tries the platform accelerator first, then CPU', () => {
  const noGpu = () => false;
  assert.deepEqual(providerCandidates('auto', 'linux', 'x64', noGpu), ['cuda', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'win32', 'x64'), ['dml', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'darwin', 'arm64'), ['coreml', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'darwin', 'x64'), ['cpu']);
  assert.deepEqual(providerCandidates('auto', 'linux', 'arm64'), ['cpu']);
  assert.deepEqual(providerCandidates('cuda', 'linux', 'x64'), ['cuda']);
  assert.deepEqual(providerCandidates('webgpu', 'linux', 'x64', noGpu), ['webgpu']);
});

test('auto adds WebGPU after CUDA on Linux x64 only where a GPU device node exists (a software Vulkan adapter is not a GPU)', () => {
  const gpu = () => true;
  assert.deepEqual(providerCandidates('auto', 'linux', 'x64', gpu), ['cuda', 'webgpu', 'cpu']);
  assert.deepEqual(providerCandidates('auto', 'win32', 'x64', gpu), ['dml', 'cpu']); // DirectML is the Windows GPU path
  assert.deepEqual(providerCandidates('auto', 'linux', 'arm64', gpu), ['cpu']); // no WebGPU in that binary

  const dev = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-dev-'));
  try {
    assert.equal(linuxGpuPresent(dev), false);
    fs.mkdirSync(path.join(dev, 'dri'));
    fs.writeFileSync(path.join(dev, 'dri', 'card0'), '');
    assert.equal(linuxGpuPresent(dev), false, 'a card node alone (no render node) is no compute GPU');
    fs.writeFileSync(path.join(dev, 'dri', 'renderD128'), '');
    assert.equal(linuxGpuPresent(dev), true);
    fs.rmSync(path.join(dev, 'dri'), { recursive: true });
    fs.writeFileSync(path.join(dev, 'nvidia0'), '');
    assert.equal(linuxGpuPresent(dev), true);
  } finally {
    fs.rmSync(dev, { recursive: true, force: true });
  }
});

test('WebGPU: where it cannot load, and its native failures, in words', () => {
  assert.match(providerUnavailableReason('webgpu', 'darwin', 'arm64'), /only on Linux x64 and Windows x64; this is darwin arm64/);
  assert.match(providerUnavailableReason('webgpu', 'linux', 'arm64'), /only on Linux x64/);
  assert.equal(providerUnavailableReason('webgpu', 'win32', 'x64'), '');
  const lib = fs.mkdtempSync(path.join(os.tmpdir(), 'llava-lib-'));
  try {
    // the loader is found through LD_LIBRARY_PATH as well as the system folders
    const before = vulkanLoaderPresent({ LD_LIBRARY_PATH: lib });
    fs.writeFileSync(path.join(lib, 'libvulkan.so.1'), '');
    assert.equal(vulkanLoaderPresent({ LD_LIBRARY_PATH: lib }), true);
    fs.rmSync(path.join(lib, 'libvulkan.so.1'));
    assert.equal(vulkanLoaderPresent({ LD_LIBRARY_PATH: lib }), before);
  } finally {
    fs.rmSync(lib, { recursive: true, force: true });
  }
  assert.match(
    webgpuFailureInWords('webgpu_context.cc:136 ... Failed to get a WebGPU adapter: No supported adapters'),
    /^no GPU adapter was found \(WebGPU needs a GPU with a Vulkan driver on Linux, or Direct3D 12 on Windows\)$/,
  );
  assert.equal(webgpuFailureInWords('something else'), 'something else');
});

test('WebGPU session options leave the named outputs in GPU memory (the map form), and only on WebGPU', () => {
  const o = sessionOptions('webgpu', {}, ['present.0.key', 'logits']);
  assert.deepEqual(o.executionProviders, ['webgpu']);
  assert.deepEqual(o.preferredOutputLocation, { 'present.0.key': 'gpu-buffer', logits: 'gpu-buffer' });
  assert.equal(sessionOptions('webgpu', {}).preferredOutputLocation, undefined);
  assert.equal(sessionOptions('cpu', {}, ['present.0.key']).preferredOutputLocation, undefined);
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
