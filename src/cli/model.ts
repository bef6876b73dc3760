// The model options ask and caption share, and loading the model they name: a folder, or a catalog
// id / Hub repo downloaded first through the same path as `llava download` (hubModel.ts).

import { loadModel, parseVariantChoice, type ExecutionProviderChoice, type LlavaModel, type VariantChoice } from '../engine';
import { int, oneOf, UsageError, type Options } from './args';
import { modelFolderFor } from './hubModel';
import { EXECUTION_PROVIDER_CHOICES } from '../core';

export const MODEL_OPTIONS = {
  model: { type: 'string' },
  provider: { type: 'string', default: 'auto' },
  variant: { type: 'string' },
  threads: { type: 'string' },
  verbose: { type: 'boolean', default: false },
} satisfies Options;

export const MODEL_USAGE = `  --model DIR|ID|OWNER/REPO|builtin      a model folder (Hugging Face ONNX layout), a catalog id or a Hub
                                        repository (downloaded first, as \`llava download\` does), or
                                        \`builtin\`: the small demo model shipped with llava (questions
                                        about simple coloured shapes only) (required)
  --provider auto|cuda|dml|coreml|webgpu|cpu
                                        execution provider (default auto: a GPU if one loads, else the CPU)
  --variant auto|V|PART=V,...           weight variant of every part (q4, fp16, ...) or per part
                                        (vision=fp16,decoder=q4); default: what the folder's config.json
                                        declares (transformers.js_config.dtype), else chosen per provider and part
  --threads N                           CPU threads (default: one per physical core)
  --verbose                             log loading steps (and why a GPU was not used) to stderr`;

const PROVIDERS = EXECUTION_PROVIDER_CHOICES;

export function variantOption(value: string | undefined, usage: string): VariantChoice | undefined {
  if (value === undefined) return undefined;
  const parsed = parseVariantChoice(value);
  if ('error' in parsed) throw new UsageError(`--variant: ${parsed.error}`, usage);
  return parsed.choice;
}

/** The folder `--model` names (downloading a Hub model first) and the variants to load. */
export async function modelDirOption(values: { model?: string; variant?: string }, usage: string): Promise<{ dir: string; variant?: VariantChoice }> {
  if (!values.model) throw new UsageError('--model is required', usage);
  return modelFolderFor(values.model, { variant: variantOption(values.variant, usage), log: (t) => process.stderr.write(t) }, usage);
}

export async function openModel(
  values: { model?: string; provider?: string; variant?: string; threads?: string; verbose?: boolean },
  usage: string,
): Promise<LlavaModel> {
  const log = values.verbose ? (l: string) => process.stderr.write(`[llava] ${l}\n`) : undefined;
  const provider = oneOf<ExecutionProviderChoice>('provider', values.provider ?? 'auto', PROVIDERS, usage);
  const threads = int('threads', values.threads, 0, usage);
  const { dir, variant } = await modelDirOption(values, usage);
  const model = await loadModel(dir, { provider, variant, threads, log });
  // The CPU is a normal place to run: under `auto` why no GPU was used is detail for --verbose.
  if (model.info.fallbackReason) log?.(`running on the ${model.info.provider.toUpperCase()} (${model.info.fallbackReason})`);
  return model;
}
