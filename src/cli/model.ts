// The model options ask and caption share, and loading the model they name.

import { loadModel, type DtypeVariant, type ExecutionProviderChoice, type LlavaModel } from '../engine';
import { int, oneOf, type Options } from './args';

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  provider: { type: 'string', default: 'auto' },
  variant: { type: 'string' },
  threads: { type: 'string' },
  verbose: { type: 'boolean', default: false },
} satisfies Options;

export const MODEL_USAGE = `  --model DIR                           a model folder in the Hugging Face ONNX layout (required)
  --provider auto|cuda|dml|coreml|cpu   execution provider (default auto: a GPU if one loads, else the CPU)
  --variant fp32|fp16|q4|q4f16|int8|... ONNX weight variant (default: chosen per provider)
  --threads N                           CPU threads (default: ONNX Runtime's choice)
  --verbose                             log loading steps (and why a GPU was not used) to stderr`;

const PROVIDERS = ['auto', 'cuda', 'dml', 'coreml', 'cpu'] as const;

export async function openModel(
  values: { model?: string; provider?: string; variant?: string; threads?: string; verbose?: boolean },
  usage: string,
): Promise<LlavaModel> {
  const log = values.verbose ? (l: string) => process.stderr.write(`[llava] ${l}\n`) : undefined;
  const model = await loadModel(values.model!, {
    provider: oneOf<ExecutionProviderChoice>('provider', values.provider ?? 'auto', PROVIDERS, usage),
    variant: values.variant as DtypeVariant | undefined,
    threads: int('threads', values.threads, 0, usage),
    log,
  });
  // The CPU is a normal place to run: under `auto` why no GPU was used is detail for --verbose.
  if (model.info.fallbackReason) log?.(`running on the ${model.info.provider.toUpperCase()} (${model.info.fallbackReason})`);
  return model;
}
