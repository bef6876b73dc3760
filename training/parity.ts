// `npx tsx training/parity.ts --model DIR --pack DIR --out FILE [--count N]`: greedy answers of the converted
// model through our engine (fp32, CPU) to the held-out short-answer and grounding questions, as
// {img, ids, max_new, tokens} lines for `train.py --parity`, which decodes the same prompt ids from the
// same pixels with the PyTorch weights. `--pack` is `pack.ts --images-only` of the held-out set: `img`
// indexes its pixels. The training recipe (training/recipe.sh) fails when any token differs.

import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel } from '../src/engine';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      model: { type: 'string' }, pack: { type: 'string' }, out: { type: 'string' },
      heldout: { type: 'string', default: 'test/data/heldout' }, count: { type: 'string', default: '40' },
    },
  });
  if (!values.model || !values.pack || !values.out) throw new Error('usage: npx tsx training/parity.ts --model DIR --pack DIR --out FILE [--count N]');
  const images = (JSON.parse(readFileSync(path.join(values.pack, 'images.json'), 'utf8')) as { images: { file: string }[] }).images.map((i) => i.file);
  const read = (f: string) => readFileSync(path.join(values.heldout!, f), 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as { image: string; text: string });
  const count = Number(values.count);
  const questions = [...read('short_answer.jsonl').slice(0, count / 2), ...read('grounding.jsonl').slice(0, count / 2)];
  const model = await loadModel(values.model, { provider: 'cpu', variant: 'fp32', threads: 2 });
  const lines: string[] = [];
  for (const q of questions) {
    const turns = [{ role: 'user' as const, text: q.text, images: [{ path: path.join(values.heldout!, q.image) }] }];
    const ids = await model.promptIds(turns);
    let tokens: number[] = [];
    for await (const ev of model.generate(turns, { maxNewTokens: 24 })) if (ev.type === 'done') tokens = ev.stats.tokenIds;
    const img = images.indexOf(q.image);
    if (img < 0) throw new Error(`${q.image} is not in ${values.pack}`);
    lines.push(JSON.stringify({ img, ids, max_new: 24, tokens, question: q.text, answer: model.tokenizer.decode(tokens) }));
  }
  await model.dispose();
  writeFileSync(values.out, lines.join('\n') + '\n');
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack}\n`);
  process.exit(1);
});
