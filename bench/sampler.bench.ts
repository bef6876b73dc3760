// Sampler cost per token, the working tree against the sampler committed at a git ref, alternating in
// one process on the same logits. The logits are synthetic (an LM-like shape: a noisy floor with a few
// strong candidates); the vocabulary sizes are LLaMA's (32064 with LLaVA's padding) and Qwen2's (151680).
//
//   npx tsx bench/sampler.bench.ts [--baseline HEAD] [--tokens 20]

import * as path from 'node:path';
import { exportEngineAt } from './gitEngine';
import { Sampler, seededRandom } from '../src/engine/sampler';

type SamplerClass = typeof Sampler;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

function logitsFor(vocab: number): Float32Array {
  const rnd = seededRandom(vocab);
  return Float32Array.from({ length: vocab }, () => rnd() * 8 + (rnd() < 0.001 ? 10 : 0));
}

function msPerToken(S: SamplerClass, logits: Float32Array, opts: ConstructorParameters<SamplerClass>[0], tokens: number): { ms: number; picks: number[] } {
  const s = new S({ ...opts, seed: 3 });
  const picks: number[] = [];
  const t = performance.now();
  for (let i = 0; i < tokens; i++) picks.push(s.sample(Float32Array.from(logits), []));
  return { ms: (performance.now() - t) / tokens, picks };
}

async function main(): Promise<void> {
  const ref = arg('--baseline', 'HEAD');
  const tokens = Number(arg('--tokens', '20'));
  const dir = exportEngineAt(ref);
  const { Sampler: Before } = (await import(path.join(dir, 'sampler.ts'))) as { Sampler: SamplerClass };
  const settings = [{}, { temperature: 0.7 }, { temperature: 0.7, topK: 50 }, { temperature: 0.7, topP: 0.9 }];
  console.log(`| vocab | settings | ${ref} (ms/token) | working tree (ms/token) | same picks |`);
  console.log('| ---: | --- | ---: | ---: | --- |');
  for (const vocab of [32064, 151680]) {
    const logits = logitsFor(vocab);
    for (const opts of settings) {
      const before: number[] = [];
      const after: number[] = [];
      let same = true;
      for (let round = 0; round < 3; round++) {
        const a = msPerToken(Before, logits, opts, tokens);
        const b = msPerToken(Sampler, logits, opts, tokens);
        before.push(a.ms);
        after.push(b.ms);
        same &&= a.picks.join() === b.picks.join();
      }
      const med = (v: number[]) => [...v].sort((x, y) => x - y)[1];
      console.log(`| ${vocab} | ${JSON.stringify(opts)} | ${med(before).toFixed(2)} | ${med(after).toFixed(2)} | ${same ? 'yes' : 'NO'} |`);
    }
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
