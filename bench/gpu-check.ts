// GPU check for a machine with an NVIDIA GPU (run it when the device tool lends one; installs nothing).
// For each fixture: load our engine with the CUDA execution provider (explicit: no silent CPU fallback)
// and with CPU, feed both the same pixel values and prompt, and compare greedy tokens and first-step
// logits; then print a timing table and write bench/results/gpu-check-<timestamp>.json.
//
//   npx tsx bench/gpu-check.ts [--models tiny-llava,tiny-qwen,bench-llava] [--new-tokens 32]
//
// Exit code 0: CUDA loaded and agreed with CPU everywhere; 1: a mismatch; 2: CUDA could not be used
// (the message says why, e.g. the provider libraries or CUDA 12 / cuDNN 9 are missing).

import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, ProviderError, type ChatTurn, type ExecutionProvider, type LlavaModel } from '../src/engine/index';
import { ensureFixtures } from '../test/fixtures/index';

const { values } = parseArgs({
  options: { models: { type: 'string', default: 'tiny-llava,tiny-qwen' }, 'new-tokens': { type: 'string', default: '32' } },
});
const NEW_TOKENS = Number(values['new-tokens']);
// fp32 on the GPU reorders float sums (cuBLAS/cuDNN kernels): logits agree closely, not bit for bit.
const LOGIT_TOLERANCE = 1e-3;
const IMAGE = path.join(__dirname, '..', 'media', 'samples', 'photo.jpg');

interface Row {
  model: string;
  provider: ExecutionProvider;
  loadMs: number;
  ttftMs: number;
  decodeTokensPerSecond: number;
  tokens: number[];
  logits: Float32Array;
}

async function measure(name: string, dir: string, provider: ExecutionProvider, turns: (m: LlavaModel) => Promise<ChatTurn[]>): Promise<Row> {
  const model = await loadModel(dir, { provider, variant: 'fp32' });
  try {
    const t = await turns(model);
    const logits = await model.nextTokenLogits(t);
    // one untimed run so kernel selection and allocations do not count against the first measured one
    for await (const _ of model.generate(t, { maxNewTokens: 2 }));
    for await (const ev of model.generate(t, { maxNewTokens: NEW_TOKENS })) {
      if (ev.type === 'done') {
        return { model: name, provider, loadMs: model.info.loadMs, ttftMs: ev.stats.timeToFirstTokenMs, decodeTokensPerSecond: ev.stats.decodeTokensPerSecond, tokens: ev.stats.tokenIds, logits };
      }
    }
    throw new Error('no done event');
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<number> {
  const names = values.models!.split(',');
  const dirs = await ensureFixtures(names);
  const rows: Row[] = [];
  const problems: string[] = [];
  for (let i = 0; i < names.length; i++) {
    let pixels: ChatTurn[] | undefined;
    const turns = async (m: LlavaModel) =>
      (pixels ??= [{ role: 'user', text: 'Describe this image in detail.', images: [{ preprocessed: await m.preprocess({ path: IMAGE }), name: 'photo.jpg' }] }]);
    const cpu = await measure(names[i], dirs[i], 'cpu', turns);
    let cuda: Row;
    try {
      cuda = await measure(names[i], dirs[i], 'cuda', turns);
    } catch (err) {
      if (err instanceof ProviderError) {
        console.error(`CUDA could not be used: ${err.message}`);
        return 2;
      }
      throw err;
    }
    rows.push(cpu, cuda);
    let maxDiff = 0;
    for (let j = 0; j < cpu.logits.length; j++) maxDiff = Math.max(maxDiff, Math.abs(cpu.logits[j] - cuda.logits[j]));
    const same = cpu.tokens.length === cuda.tokens.length && cpu.tokens.every((t, j) => t === cuda.tokens[j]);
    console.log(`${names[i]}: first-step logits max |cpu - cuda| = ${maxDiff.toExponential(2)}; greedy tokens ${same ? 'identical' : 'DIFFER'}`);
    if (maxDiff > LOGIT_TOLERANCE) problems.push(`${names[i]}: logits differ by ${maxDiff}`);
    if (!same) problems.push(`${names[i]}: greedy tokens differ`);
  }
  console.log('\n| model | provider | load ms | first token ms | decode tokens/s |\n| --- | --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.model} | ${r.provider} | ${r.loadMs} | ${r.ttftMs.toFixed(0)} | ${r.decodeTokensPerSecond.toFixed(1)} |`);
  const out = path.join(__dirname, 'results', `gpu-check-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ host: os.hostname(), cpus: os.cpus()[0]?.model, node: process.version, newTokens: NEW_TOKENS, rows: rows.map(({ logits, ...r }) => r), problems }, null, 2));
  console.log(`\n${rows.length / 2} passed, ${problems.length} failed  (${out})`);
  return problems.length ? 1 : 0;
}

main().then((code) => process.exit(code), (err) => { console.error(err); process.exit(1); });
