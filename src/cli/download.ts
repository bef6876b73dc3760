// `llava download`: list a model's repository on the Hub, choose each part's variant from what it
// holds, print the plan, download it (resumable, verified, one process per folder).

import { oneOf, parse, UsageError, type CliCommand } from './args';
import { defaultModelsDir, fetchHubModel, resolveName } from './hubModel';

const USAGE = `Usage: llava download <catalog-id | owner/repo>[:VARIANTS] [options]

Lists the repository at the revision, chooses the file of each part (vision, embed, decoder) from
what exists, prints the choice with sizes and the commit, and downloads it.

  --revision R                          branch, tag or commit (default: the catalog's, else main)
  --variant auto|V|PART=V,...           auto (default): CPU takes 4-bit, then 8-bit, bnb4, fp32, fp16;
                                        GPU fp16, q4f16, fp32. V pins every part; vision=fp16,decoder=q4 some
  --provider cpu|gpu                    which preference auto follows (default cpu)
  --dir DIR                             models folder (default $LLAVA_MODELS_DIR, else ~/.cache/llava-vscode/models)
  --dry-run                             print the choice, download nothing
Environment: HF_ENDPOINT (a mirror), HF_TOKEN (gated repositories).
`;

async function run(args: string[]): Promise<number> {
  const { values, positionals } = parse(
    args,
    {
      revision: { type: 'string' },
      variant: { type: 'string' },
      provider: { type: 'string', default: 'cpu' },
      dir: { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
    USAGE,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) throw new UsageError(positionals.length ? 'one model at a time' : 'a catalog id or owner/repo is required', USAGE);
  const model = resolveName(positionals[0], { variant: values.variant, revision: values.revision, dir: values.dir ?? defaultModelsDir() }, USAGE);
  await fetchHubModel(model, {
    provider: oneOf('provider', values.provider ?? 'cpu', ['cpu', 'gpu'] as const, USAGE),
    dryRun: values['dry-run'],
    out: (t) => process.stdout.write(t),
  });
  return 0;
}

export const downloadCommand: CliCommand = { name: 'download', summary: 'download a model from the Hub, choosing each part from what exists', usage: USAGE, run };
