// `llava info`: what a model folder holds and what the engine would choose, as JSON.

import { chooseVariants, readModelFolder } from '../engine';
import { readManifest } from '../hub';
import { parse, type CliCommand } from './args';
import { modelDirOption } from './model';

const USAGE = `Usage: llava info --model DIR|ID|OWNER/REPO|builtin [--variant auto|V|PART=V,...]

Prints, as JSON, what the folder holds: model type, text config, context window, image token,
preprocessing, prompt format, end-of-turn ids, the ONNX variants per part, the variant chosen per
part on the CPU and on a GPU (with --variant pinned), and, for a download, its repo and commit.
A catalog id or Hub repository is downloaded first, as \`llava download\` does; \`builtin\` is the
demo model shipped with llava.
`;

async function run(args: string[]): Promise<number> {
  const { values } = parse(args, { model: { type: 'string' }, variant: { type: 'string' } }, USAGE);
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { dir, variant } = await modelDirOption(values, USAGE);
  const spec = await readModelFolder(dir);
  const manifest = await readManifest(dir);
  const info = {
    dir: spec.dir,
    modelType: spec.modelType,
    text: spec.text,
    contextLength: spec.contextLength ?? null,
    imageTokenId: spec.imageTokenId,
    preprocess: spec.preprocess,
    promptFormat: spec.chatTemplate ? 'chat_template' : spec.promptFormat,
    eosTokenIds: spec.generation.eosTokenIds,
    variants: spec.onnx,
    chosen: { cpu: chooseVariants(spec, 'cpu', variant), gpu: chooseVariants(spec, 'cuda', variant) },
    ...(manifest ? { download: { repo: manifest.repo, revision: manifest.revision, commit: manifest.commit, variants: manifest.variants } } : {}),
  };
  process.stdout.write(JSON.stringify(info, null, 2) + '\n');
  return 0;
}

export const infoCommand: CliCommand = { name: 'info', summary: "show what a model folder holds and the engine's choice per part", usage: USAGE, run };
