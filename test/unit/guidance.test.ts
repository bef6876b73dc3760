// What the user is told when something stands between a question and an answer (src/extension/guidance.ts):
// typed errors become sentences with the buttons that fix them, never jargon, paths or untrue claims.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  askFailureGuidance,
  cpuReasonInWords,
  downloadFailureGuidance,
  errnoOf,
  isGuidanceActionId,
  noModelGuidance,
  nvidiaGpuPresent,
  shortModelName,
  imageTooLargeInWords,
} from '../../src/extension/guidance';
import { ChecksumError, DownloadError, EngineError, ProviderError } from '../../src/core';

const labels = (g: { actions: { label: string }[] }) => g.actions.map((a) => a.label);
const ids = (g: { actions: { id: string }[] }) => g.actions.map((a) => a.id);

/** A DownloadError the way src/hub/download.ts throws it after its retries: the Node error as its cause. */
function transportFailure(code: string, text: string): DownloadError {
  const cause = Object.assign(new Error(text), { code });
  return new DownloadError(`onnx-community/nanoLLaVA-1.5/config.json: ${text} (after 4 attempts; the partial file is kept for resuming)`, { cause });
}

test('no model: Download (size) and Use Local Folder…, in that order; the built-in model slots in third', () => {
  const offer = { label: 'nanoLLaVA 1.5 (1B, laptop CPU)', size: '1.1 GB', licence: 'apache-2.0' };
  const g = noModelGuidance({ offer });
  assert.deepEqual(labels(g), ['Download nanoLLaVA 1.5 (1.1 GB)', 'Use Local Folder…']);
  assert.equal(g.actions[0].primary, true);
  assert.match(g.text, /not downloaded yet/);
  assert.match(g.text, /1\.1 GB, licence apache-2\.0/);

  const withBuiltin = noModelGuidance({ offer, builtin: { label: 'Built-in demo model (shapes)', description: 'no download; shapes only' } });
  assert.deepEqual(ids(withBuiltin), ['download', 'localFolder', 'builtin']);
  // the button names the model by its one label (not its folder), and the text says what it can do
  assert.equal(withBuiltin.actions[2].label, 'Use Built-in demo model (shapes)');
  assert.match(withBuiltin.text, /Or try the Built-in demo model \(shapes\) at once: no download; shapes only\./);
  assert.doesNotMatch(g.text, /Built-in/);
  // Download stays the recommended choice: the built-in model knows pictures of coloured shapes only
  assert.deepEqual(withBuiltin.actions.filter((a) => a.primary).map((a) => a.id), ['download']);

  // an unknown size is left out, not shown as "(size unknown)" on a button
  assert.deepEqual(labels(noModelGuidance({ offer: { label: 'nanoLLaVA 1.5 (1B, laptop CPU)' } })), ['Download nanoLLaVA 1.5', 'Use Local Folder…']);
  // a setting that names something unusable says so first
  assert.match(noModelGuidance({ offer, problem: '"foo" is not a model' }).text, /cannot be used:\*\* "foo" is not a model/);
});

test('short model names keep buttons short', () => {
  assert.equal(shortModelName('nanoLLaVA 1.5 (1B, laptop CPU)'), 'nanoLLaVA 1.5');
  assert.equal(shortModelName('LLaVA 1.5 7B'), 'LLaVA 1.5 7B');
});

test('offline or behind a proxy: the friendly sentence with Retry / Proxy Settings / Use Local Folder…', () => {
  for (const [code, text] of [
    ['ENOTFOUND', 'huggingface.co: getaddrinfo ENOTFOUND huggingface.co'],
    ['ECONNREFUSED', '127.0.0.1:9: connect ECONNREFUSED 127.0.0.1:9'],
    ['ETIMEDOUT', 'connect ETIMEDOUT'],
    ['EAI_AGAIN', 'getaddrinfo EAI_AGAIN huggingface.co'],
  ]) {
    const g = downloadFailureGuidance(transportFailure(code, text), 'nanoLLaVA 1.5');
    assert.match(g.text, /^\*\*Can't reach the Hugging Face Hub: offline or behind a proxy\?\*\*/, code);
    assert.deepEqual(labels(g), ['Retry', 'Proxy Settings', 'Use Local Folder…'], code);
    // no jargon and no claim about partial files (there may be none)
    assert.doesNotMatch(g.text, /partial|getaddrinfo|ECONN|ENOTFOUND|attempts/, code);
  }
  // a timeout without an errno code reads the same
  assert.match(downloadFailureGuidance(new DownloadError('x: huggingface.co: no answer for 60 s'), 'M').text, /Can't reach/);
});

test('other download failures say what happened and what to do', () => {
  const denied = downloadFailureGuidance(new DownloadError('config.json: access denied (gated) [HTTP 403]'), 'M');
  assert.match(denied.text, /refused access/);
  assert.ok(ids(denied).includes('localFolder'));
  assert.match(downloadFailureGuidance(new DownloadError('config.json: not found on the Hub [HTTP 404]'), 'M').text, /no longer on the Hugging Face Hub/);
  assert.match(downloadFailureGuidance(new DownloadError('x: the server answered HTTP 503 [HTTP 503]'), 'M').text, /HTTP 503/);
  const sum = downloadFailureGuidance(new ChecksumError('onnx/x.onnx', 'aa', 'bb'), 'M');
  assert.match(sum.text, /damaged/);
  assert.equal(sum.actions[0].label, 'Retry');
  const full = downloadFailureGuidance(transportFailure('ENOSPC', 'no space left on device'), 'M');
  assert.match(full.text, /disk space/);
  assert.ok(ids(full).includes('modelsFolderSetting'));
  const other = downloadFailureGuidance(new Error('something odd'), 'M');
  assert.match(other.text, /failed\.\*\* something odd/);
  assert.deepEqual(ids(other), ['download', 'localFolder', 'showLogs']);
});

test('errno codes are found through the cause chain', () => {
  assert.equal(errnoOf(transportFailure('ECONNRESET', 'reset')), 'ECONNRESET');
  assert.equal(errnoOf(new DownloadError('x')), undefined);
  assert.equal(errnoOf(new EngineError('MODEL_LOAD', 'x')), undefined);
});

test('an explicit provider that cannot load: Switch to Auto / Open Setting / How to Enable CUDA, without paths', () => {
  const err = new ProviderError('cuda', 'Could not use the cuda execution provider: the CUDA provider library /tmp/x/libonnxruntime_providers_cuda.so is not installed (onnxruntime-node downloads it at install time; ...)');
  const g = askFailureGuidance(err, 'cuda', true);
  assert.deepEqual(labels(g), ['Switch to Auto', 'Open Setting', 'How to Enable CUDA']);
  assert.doesNotMatch(g.text, /\/tmp|libonnxruntime|onnxruntime-node downloads/);
  assert.match(g.text, /not installed with this extension/);
  assert.equal(g.modelProblem, 'CUDA unavailable');
  // no NVIDIA GPU at all: say that
  assert.match(askFailureGuidance(err, 'cuda', false).text, /No NVIDIA GPU was found/);
  // DirectML has no CUDA help
  assert.deepEqual(ids(askFailureGuidance(new ProviderError('dml', 'x'), 'dml')), ['switchToAuto', 'providerSetting']);
});

test('an unreadable image is that question’s problem, not the model’s', () => {
  const g = askFailureGuidance(new EngineError('IMAGE_DECODE', 'broken.png: not a supported image (Input buffer contains unsupported image format)'), 'auto');
  assert.match(g.text, /^\*\*broken\.png cannot be read as an image\*\*/);
  assert.doesNotMatch(g.text, /Input buffer/);
  assert.equal(g.modelProblem, undefined);
  assert.equal(askFailureGuidance(new EngineError('IMAGE_TOO_LARGE', 'big.png: too large'), 'auto').modelProblem, undefined);
  assert.ok(askFailureGuidance(new EngineError('MODEL_LOAD', 'bad onnx'), 'auto').modelProblem);
  const crash = Object.assign(new Error('The LLaVA engine process was killed by SIGKILL.'), { code: 'ENGINE_EXITED' });
  assert.match(askFailureGuidance(crash, 'auto').text, /stopped unexpectedly/);
});

test('image size limits in words, numbers formatted', () => {
  assert.equal(
    imageTooLargeInWords('big.png: 9000x8000 (72000000 pixels) exceeds the limit of 64000000 pixels'),
    '**big.png is too large:** 9,000 × 8,000 px (72 MP) is over the 64 MP limit. Scale it down and ask again.',
  );
  assert.match(imageTooLargeInWords('huge.tif: file is 83886080 bytes, over the limit of 67108864 bytes'), /80 MB is over the 64 MB limit/);
  assert.match(imageTooLargeInWords('x.png: 5x5 exceeds the limit of 4 pixels'), /5 × 5 px/);
  // an unknown shape keeps the engine's words
  assert.equal(imageTooLargeInWords('odd.png: something else'), '**odd.png is too large:** something else');
});

test('CPU on auto, in words: no GPU, no CUDA provider, CUDA that failed to start', () => {
  const notInstalled = 'cuda: the CUDA provider library /x/libonnxruntime_providers_cuda.so is not installed (onnxruntime-node downloads it; ...)';
  assert.equal(cpuReasonInWords(notInstalled, false), 'No NVIDIA GPU was found on this machine, so answers run on the CPU.');
  assert.match(cpuReasonInWords(notInstalled, true), /GPU support .* is not installed with this extension/);
  assert.match(cpuReasonInWords('cuda: libcudnn.so.9: cannot open shared object file', true), /CUDA could not start/);
  assert.match(cpuReasonInWords('dml: failed', true), /DirectML/);
  assert.match(cpuReasonInWords('webgpu: no GPU adapter was found (...)', true), /^WebGPU could not start on this GPU .*so answers run on the CPU\.$/);
  assert.equal(
    cpuReasonInWords('cuda: the CUDA provider library /x/libonnxruntime_providers_cuda.so is not installed; webgpu: no GPU adapter was found', true),
    'An NVIDIA GPU is present, but GPU support (the CUDA provider of ONNX Runtime) is not installed with this extension; WebGPU could not start either, so answers run on the CPU.',
  );
  assert.equal(
    cpuReasonInWords('cuda: the CUDA provider library /x/libonnxruntime_providers_cuda.so is not installed', true, 'webgpu'),
    'An NVIDIA GPU is present, but GPU support (the CUDA provider of ONNX Runtime) is not installed with this extension, so answers run on WebGPU instead.',
  );
  for (const r of [notInstalled, 'cuda: libcudnn.so.9: cannot open']) {
    for (const gpu of [true, false]) assert.doesNotMatch(cpuReasonInWords(r, gpu), /\/|\.so|onnxruntime-node/);
  }
});

test('NVIDIA detection reads the driver files on Linux only', () => {
  assert.equal(nvidiaGpuPresent('linux', () => false), false);
  assert.equal(nvidiaGpuPresent('linux', (p) => p === '/proc/driver/nvidia/version'), true);
  assert.equal(nvidiaGpuPresent('win32', () => false), true);
});

test('action ids from the webview are checked', () => {
  assert.ok(isGuidanceActionId('download'));
  assert.ok(!isGuidanceActionId('rm -rf'));
  assert.ok(!isGuidanceActionId('__proto__'));
});
