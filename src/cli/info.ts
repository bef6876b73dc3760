// `llava info`: what a model folder holds and what the engine would choose, as JSON.

import { chooseVariants, readModelFolder } from '../engine';
import { parse, UsageError, type CliCommand } from './args';

const USAGE = `Usage: llava info --model DIR

Prints, as JSON, what the folder holds: model type, text config, image token, preprocessing, prompt
format, end-of-turn ids, the ONNX variants per part, and the CPU's default choice.
`;

async function run(args: string[]): Promise<number> {
  const { values } = parse(args, { model: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (!values.model) throw new UsageError('--model DIR is required', USAGE);
  const spec = await readModelFolder(values.model);
  const info = {
    dir: spec.dir,
    modelType: spec.modelType,
    text: spec.text,
    imageTokenId: spec.imageTokenId,
    preprocess: spec.preprocess,
    promptFormat: spec.chatTemplate ? 'chat_template' : spec.promptFormat,
    eosTokenIds: spec.generation.eosTokenIds,
    variants: spec.onnx,
    cpuDefault: chooseVariants(spec, 'cpu'),
  };
  process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  return 0;
}

export const infoCommand: CliCommand = { name: 'info', summary: "show what a model folder holds and the engine's choice", usage: USAGE, run };
