// Execution-provider choice. onnxruntime-node does not fall back by itself: a session created with
// ['cuda', 'cpu'] throws when CUDA cannot load. So each candidate is tried on its own, failures are
// caught, and the caller learns which provider won and why the others lost.
//
// WebGPU: onnxruntime-node's own Linux x64 and Windows binaries hold ONNX Runtime's WebGPU provider
// (Dawn; on Linux through Vulkan), so unlike CUDA it needs nothing downloaded: any GPU with a Vulkan
// (Linux) or D3D12 (Windows) driver. `auto` tries it on Linux x64 after CUDA, only where a GPU device node
// exists: Mesa's software Vulkan (lavapipe) also offers an adapter, which would run every shader on the CPU.

import * as fs from 'node:fs';
import * as path from 'node:path';
import type { InferenceSession } from 'onnxruntime-node';
import { ProviderError } from '../core';
import type { ExecutionProvider, ExecutionProviderChoice } from '../core';

/** The accelerated provider onnxruntime-node ships for a platform, if any. */
export function acceleratorFor(platform: NodeJS.Platform, arch: string): ExecutionProvider | undefined {
  if (platform === 'linux' && arch === 'x64') return 'cuda';
  if (platform === 'win32') return 'dml';
  if (platform === 'darwin' && arch === 'arm64') return 'coreml';
  return undefined;
}

/** Whether onnxruntime-node's binary for this platform holds the WebGPU provider. */
export function webgpuBuiltFor(platform: NodeJS.Platform, arch: string): boolean {
  return (platform === 'linux' && arch === 'x64') || (platform === 'win32' && arch === 'x64');
}

/** Linux: a GPU's device node (a DRM render node, or NVIDIA's). Without one, a Vulkan adapter is a software one. */
export function linuxGpuPresent(devDir = '/dev'): boolean {
  try {
    return fs.readdirSync(devDir).some((n) => /^nvidia\d+$/.test(n)) || fs.readdirSync(path.join(devDir, 'dri')).some((n) => n.startsWith('renderD'));
  } catch {
    return false;
  }
}

/** Providers to try, in order. 'auto' means the platform's accelerator (and on Linux x64 with a GPU, WebGPU), then CPU. */
export function providerCandidates(
  choice: ExecutionProviderChoice,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  gpuPresent: () => boolean = linuxGpuPresent,
): ExecutionProvider[] {
  if (choice !== 'auto') return [choice];
  const accel = acceleratorFor(platform, arch);
  const chain: ExecutionProvider[] = accel ? [accel] : [];
  if (platform === 'linux' && webgpuBuiltFor(platform, arch) && gpuPresent()) chain.push('webgpu');
  return [...chain, 'cpu'];
}

/**
 * A cheap check before asking ONNX Runtime: a provider that cannot possibly load here gets a
 * readable reason instead of a native error string. Returns '' when it is worth trying.
 */
export function providerUnavailableReason(
  provider: ExecutionProvider,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
  ortBinDir: string | undefined = defaultOrtBinDir(),
): string {
  if (provider === 'cpu') return '';
  if (provider === 'webgpu') {
    if (!webgpuBuiltFor(platform, arch)) return `onnxruntime-node offers the WebGPU execution provider only on Linux x64 and Windows x64; this is ${platform} ${arch}`;
    if (platform === 'linux' && !vulkanLoaderPresent()) {
      return 'WebGPU on Linux needs the Vulkan loader (libvulkan.so.1, package libvulkan1) and a Vulkan driver for the GPU';
    }
    return '';
  }
  const accel = acceleratorFor(platform, arch);
  if (accel !== provider) {
    const where = { cuda: 'Linux x64', dml: 'Windows', coreml: 'macOS on Apple silicon' }[provider];
    return `onnxruntime-node offers the ${provider} execution provider only on ${where}; this is ${platform} ${arch}`;
  }
  if (provider === 'cuda' && ortBinDir) {
    // The CUDA provider is a separate library that onnxruntime-node's postinstall downloads; it is absent
    // when installs run offline or with ONNXRUNTIME_NODE_INSTALL=skip.
    const lib = path.join(ortBinDir, 'libonnxruntime_providers_cuda.so');
    if (!fs.existsSync(lib)) {
      return `the CUDA provider library ${lib} is not installed (onnxruntime-node downloads it at install time; it also needs CUDA 12 and cuDNN 9 on the library path)`;
    }
  }
  return '';
}

/** The Vulkan loader on the library search path (what Dawn opens); the common system folders and LD_LIBRARY_PATH. */
export function vulkanLoaderPresent(env: NodeJS.ProcessEnv = process.env): boolean {
  const dirs = [...(env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean), '/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib', '/lib/x86_64-linux-gnu', '/usr/local/lib'];
  return dirs.some((d) => fs.existsSync(path.join(d, 'libvulkan.so.1')));
}

/**
 * ONNX Runtime's and Dawn's words for the usual WebGPU failures, in a user's: which GPU or driver is missing.
 * Other messages pass through.
 */
export function webgpuFailureInWords(message: string): string {
  if (/No supported adapters|Failed to get a WebGPU adapter/i.test(message)) {
    return 'no GPU adapter was found (WebGPU needs a GPU with a Vulkan driver on Linux, or Direct3D 12 on Windows)';
  }
  return message;
}

function defaultOrtBinDir(): string | undefined {
  try {
    const pkg = require.resolve('onnxruntime-node/package.json');
    return path.join(path.dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
}

export interface SessionSettings {
  /** 0 or undefined: ONNX Runtime's default (one thread per physical core) */
  threads?: number;
}

/**
 * `deviceOutputs`: output names to leave in GPU memory (WebGPU only): the decoder's `present.*`, fed back as
 * the next run's `past_key_values.*` without crossing to the host each step.
 */
export function sessionOptions(provider: ExecutionProvider, settings: SessionSettings, deviceOutputs: readonly string[] = []): InferenceSession.SessionOptions {
  const options: InferenceSession.SessionOptions = {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    // Spinning threads burn a core while the engine waits for the next request; an editor must stay idle-friendly.
    extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
  };
  // The CPU memory arena stays on: turning it off lowered peak RSS on bench-llava by ~45 MB but cost
  // 10-20% of decode speed and time to first token (bench/README.md); decoder.ts bounds the prefill's
  // largest transient (the logits) instead.
  if (settings.threads && settings.threads > 0) options.intraOpNumThreads = settings.threads;
  if (provider === 'webgpu' && deviceOutputs.length) {
    // the map form: the string form ('gpu-buffer' for every output) returned host tensors in onnxruntime-node 1.30
    options.preferredOutputLocation = Object.fromEntries(deviceOutputs.map((n) => [n, 'gpu-buffer' as const]));
  }
  return options;
}

export interface ProviderResult<T> {
  value: T;
  provider: ExecutionProvider;
  /** '' when the first candidate worked; otherwise why each earlier one was passed over */
  fallbackReason: string;
}

/**
 * Runs `attempt` with each candidate provider until one succeeds. With an explicit choice there is
 * no fallback: the failure is a ProviderError that says why.
 */
export async function withProviderFallback<T>(
  choice: ExecutionProviderChoice,
  attempt: (provider: ExecutionProvider) => Promise<T>,
  log: (line: string) => void = () => {},
  candidates: ExecutionProvider[] = providerCandidates(choice),
): Promise<ProviderResult<T>> {
  const reasons: string[] = [];
  for (const provider of candidates) {
    const precheck = providerUnavailableReason(provider);
    if (precheck && choice !== 'auto') {
      throw new ProviderError(provider, `Could not use the ${provider} execution provider: ${precheck}`);
    }
    if (precheck) {
      reasons.push(`${provider}: ${precheck}`);
      log(`execution provider ${provider} skipped: ${precheck}`);
      continue;
    }
    try {
      const value = await attempt(provider);
      const fallbackReason = reasons.join('; ');
      log(`execution provider: ${provider}${fallbackReason ? ` (fell back: ${fallbackReason})` : ''}`);
      return { value, provider, fallbackReason };
    } catch (err) {
      const raw = err instanceof Error ? err.message : String(err);
      const message = provider === 'webgpu' ? webgpuFailureInWords(raw) : raw;
      // The CPU provider always exists: its failure is the model's, and keeps its own error type.
      if (provider === 'cpu') throw err;
      if (choice !== 'auto') {
        throw new ProviderError(provider, `Could not use the ${provider} execution provider: ${message}`, { cause: err });
      }
      reasons.push(`${provider}: ${message}`);
      log(`execution provider ${provider} failed: ${message}`);
    }
  }
  throw new ProviderError(String(choice), `No execution provider could be used: ${reasons.join('; ')}`);
}
