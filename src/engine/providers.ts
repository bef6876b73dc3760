// Execution-provider choice. onnxruntime-node does not fall back by itself: a session created with
// ['cuda', 'cpu'] throws when CUDA cannot load. So each candidate is tried on its own, failures are
// caught, and the caller learns which provider won and why the others lost.

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

/** Providers to try, in order. 'auto' means the platform's accelerator, then CPU. */
export function providerCandidates(
  choice: ExecutionProviderChoice,
  platform: NodeJS.Platform = process.platform,
  arch: string = process.arch,
): ExecutionProvider[] {
  if (choice !== 'auto') return [choice];
  const accel = acceleratorFor(platform, arch);
  return accel ? [accel, 'cpu'] : ['cpu'];
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

export function sessionOptions(provider: ExecutionProvider, settings: SessionSettings): InferenceSession.SessionOptions {
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
      const message = err instanceof Error ? err.message : String(err);
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
