// GPU check for a machine with a GPU (run it when the device tool lends one; installs nothing).
// For each fixture and each GPU provider asked for: load our engine with that execution provider
// (explicit: no silent CPU fallback) and with CPU, feed both the same pixel values and prompt, and compare
// greedy tokens and first-step logits; then print a timing table and write
// bench/results/gpu-check-<timestamp>.json. WebGPU keeps the KV cache in GPU memory between steps
// (the table's "KV cache" column says where it was).
//
//   npx tsx bench/gpu-check.ts [--models tiny-llava,tiny-qwen,bench-llava] [--providers cuda,webgpu] [--new-tokens 32]
//
// Exit code 0: every provider loaded and agreed with CPU everywhere; 1: a mismatch; 2: a provider could not
// be used (the message says why, e.g. CUDA's provider libraries or CUDA 12 / cuDNN 9 missing, or no Vulkan
// adapter for WebGPU); the providers that did load are still compared and timed.

import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { loadModel, ProviderError, type ChatTurn, type ExecutionProvider, type LlavaModel } from '../src/engine/index';
import { ensureFixtures } from '../test/fixtures/index';

const { values } = parseArgs({
  options: {
    models: { type: 'string', default: 'tiny-llava,tiny-qwen' },
    providers: { type: 'string', default: 'cuda,webgpu' },
    'new-tokens': { type: 'string', default: '32' },
  },
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
  kvCache: string;
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
        const { loadMs, kvCache = 'growing' } = model.info;
        return { model: name, provider, loadMs, ttftMs: ev.stats.timeToFirstTokenMs, decodeTokensPerSecond: ev.stats.decodeTokensPerSecond, kvCache, tokens: ev.stats.tokenIds, logits };
      }
    }
    throw new Error('no done event');
  } finally {
    await model.dispose();
  }
}

async function main(): Promise<number> {
  const names = values.models!.split(',');
  const gpus = values.providers!.split(',') as ExecutionProvider[];
  const dirs = await ensureFixtures(names);
  const rows: Row[] = [];
  const problems: string[] = [];
  const unavailable = new Map<ExecutionProvider, string>();
  for (let i = 0; i < names.length; i++) {
    let pixels: ChatTurn[] | undefined;
    const turns = async (m: LlavaModel) =>
      (pixels ??= [{ role: 'user', text: 'Describe this image in detail.', images: [{ preprocessed: await m.preprocess({ path: IMAGE }), name: 'photo.jpg' }] }]);
    const cpu = await measure(names[i], dirs[i], 'cpu', turns);
    rows.push(cpu);
    for (const ep of gpus) {
      if (unavailable.has(ep)) continue;
      let gpu: Row;
      try {
        gpu = await measure(names[i], dirs[i], ep, turns);
      } catch (err) {
        if (!(err instanceof ProviderError)) throw err;
        console.error(`${ep} could not be used: ${err.message}`);
        unavailable.set(ep, err.message);
        continue;
      }
      rows.push(gpu);
      let maxDiff = 0;
      for (let j = 0; j < cpu.logits.length; j++) maxDiff = Math.max(maxDiff, Math.abs(cpu.logits[j] - gpu.logits[j]));
      const same = cpu.tokens.length === gpu.tokens.length && cpu.tokens.every((t, j) => t === gpu.tokens[j]);
      console.log(`${names[i]}: first-step logits max |cpu - ${ep}| = ${maxDiff.toExponential(2)}; greedy tokens ${same ? 'identical' : 'DIFFER'}`);
      if (maxDiff > LOGIT_TOLERANCE) problems.push(`${names[i]} ${ep}: logits differ by ${maxDiff}`);
      if (!same) problems.push(`${names[i]} ${ep}: greedy tokens differ`);
    }
  }
  console.log('\n| model | provider | KV cache | load ms | first token ms | decode tokens/s |\n| --- | --- | --- | ---: | ---: | ---: |');
  for (const r of rows) console.log(`| ${r.model} | ${r.provider} | ${r.kvCache} | ${r.loadMs} | ${r.ttftMs.toFixed(0)} | ${r.decodeTokensPerSecond.toFixed(1)} |`);
  const out = path.join(__dirname, 'results', `gpu-check-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, JSON.stringify({ host: os.hostname(), cpus: os.cpus()[0]?.model, node: process.version, newTokens: NEW_TOKENS, rows: rows.map(({ logits, ...r }) => r), problems, unavailable: Object.fromEntries(unavailable) }, null, 2));
  const compared = rows.length - names.length;
  console.log(`\n${compared - problems.length} of ${compared} GPU runs agreed with the CPU; ${unavailable.size} provider(s) unavailable  (${out})`);
  return problems.length ? 1 : unavailable.size ? 2 : 0;
}

main().then((code) => process.exit(code), (err) => { console.error(err); process.exit(1); });
