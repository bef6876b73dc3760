// Decoder graph kinds, hub vs fast, on the same made-up weights: a LLaMA-7B-shaped-but-smaller
// decoder (hidden 1024, 12 layers, 16 heads / 4 KV heads, intermediate 2816, vocab 32000), fp32 and q4.
// Each graph prefills a 600-token context, then decodes one token at a time on the CPU provider, the
// two graphs of a dtype stepping in alternation so that load on a shared machine falls on both alike;
// the table gives decode ms/token and tokens/s (median over the steps), the speed-up of fast over hub,
// and, per dtype, whether the two graphs agree (max |logit difference| at the first decode step and the
// argmax at every step). Inputs are fixed seeded embeddings, so both graphs see exactly the same thing.
// Nothing asserts on timings.
//
//   npx tsx bench/decoder.bench.ts [--context 600] [--steps 24] [--threads 2] [--dtypes fp32,q4]
// Table to stdout; JSON to bench/results/decoder-<timestamp>.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildDecoder, buildFastDecoder, headDim, type LlavaSpec } from '../src/convert';
import { FIXTURES } from '../test/fixtures/models';
import { normal } from '../test/fixtures/numeric';
import { prngSource } from '../test/fixtures/weights';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const { values } = parseArgs({
  options: {
    context: { type: 'string', default: '600' },
    steps: { type: 'string', default: '24' },
    threads: { type: 'string', default: '2' },
    dtypes: { type: 'string', default: 'fp32,q4' },
  },
});
const CONTEXT = Number(values.context);
const STEPS = Number(values.steps);

const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!.spec;
const spec: LlavaSpec = {
  ...tiny,
  name: 'decode-bench',
  text: { ...tiny.text, hidden: 1024, layers: 12, heads: 16, kvHeads: 4, intermediate: 2816, vocab: 32000, maxPositions: 4096 },
};
const t = spec.text;
const hd = headDim(t);

interface Run {
  graph: 'hub' | 'fast';
  dtype: string;
  msPerToken: number;
  tokensPerSecond: number;
  prefillMs: number;
  firstLogits: Float32Array;
  argmax: number[];
}

const argmax = (v: Float32Array, from: number, n: number) => {
  let best = from;
  for (let i = from; i < from + n; i++) if (v[i] > v[best]) best = i;
  return best - from;
};

/** One decoder graph, prefilled, stepping one token at a time. */
async function open(graph: 'hub' | 'fast', dtype: string) {
  const opts = { fp16Weights: false, q4: dtype === 'q4', source: prngSource(spec.name) };
  const bytes = (graph === 'hub' ? buildDecoder : buildFastDecoder)(spec, opts).encode();
  const session = await ort.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: Number(values.threads), graphOptimizationLevel: 'all' });
  const embeds = normal('decode-bench/embeds', (CONTEXT + STEPS) * t.hidden, 1); // [context + steps, hidden]
  const feeds = (start: number, count: number, past: Record<string, ort.Tensor>): Record<string, ort.Tensor> => {
    const total = start + count;
    const f: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', embeds.slice(start * t.hidden, total * t.hidden), [1, count, t.hidden]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(total).fill(1n), [1, total]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from({ length: count }, (_, i) => BigInt(start + i)), [1, count]),
    };
    for (let i = 0; i < t.layers; i++) {
      for (const kv of ['key', 'value']) f[`past_key_values.${i}.${kv}`] = past[`present.${i}.${kv}`] ?? new ort.Tensor('float32', new Float32Array(0), [1, t.kvHeads, 0, hd]);
    }
    return f;
  };
  const t0 = performance.now();
  let out = (await session.run(feeds(0, CONTEXT, {}))) as Record<string, ort.Tensor>;
  const run: Run = { graph, dtype, msPerToken: 0, tokensPerSecond: 0, prefillMs: performance.now() - t0, firstLogits: new Float32Array(0), argmax: [] };
  const times: number[] = [];
  return {
    run,
    async step(s: number): Promise<void> {
      const start = performance.now();
      out = (await session.run(feeds(CONTEXT + s, 1, out))) as Record<string, ort.Tensor>;
      times.push(performance.now() - start);
      const logits = out.logits.data as Float32Array;
      if (s === 0) run.firstLogits = logits.slice();
      run.argmax.push(argmax(logits, 0, t.vocab));
    },
    async close(): Promise<Run> {
      await session.release();
      const sorted = [...times].sort((a, b) => a - b);
      run.msPerToken = sorted[Math.floor(sorted.length / 2)];
      run.tokensPerSecond = 1000 / run.msPerToken;
      return run;
    },
  };
}

/**
 * Both graphs of one dtype step in alternation (the order swapping every step), so load from other
 * processes on a shared machine falls on both alike; medians over the steps.
 */
async function compareDtype(dtype: string): Promise<Run[]> {
  const hub = await open('hub', dtype);
  const fast = await open('fast', dtype);
  for (let s = 0; s < STEPS; s++) {
    const order = s % 2 === 0 ? [hub, fast] : [fast, hub];
    for (const g of order) await g.step(s);
  }
  return [await hub.close(), await fast.close()];
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const dtype of values.dtypes!.split(',')) {
    runs.push(...(await compareDtype(dtype)));
    console.error(`${dtype}: hub ${runs.at(-2)!.msPerToken.toFixed(1)}, fast ${runs.at(-1)!.msPerToken.toFixed(1)} ms/token`);
  }

  console.log(`\nDecode at a ${CONTEXT}-token context, ${STEPS} steps, ${values.threads} threads, CPU provider (${os.cpus()[0]?.model}, ${os.cpus().length} cores)\n`);
  console.log('| dtype | graph | prefill (ms) | decode ms/token | tokens/s | fast / hub | same argmax every step | max logit diff (step 1) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  const summary = runs.map((r) => {
    const hub = runs.find((o) => o.dtype === r.dtype && o.graph === 'hub')!;
    let diff = 0;
    for (let i = 0; i < r.firstLogits.length; i++) diff = Math.max(diff, Math.abs(r.firstLogits[i] - hub.firstLogits[i]));
    const same = r.argmax.every((a, i) => a === hub.argmax[i]);
    const speedup = hub.msPerToken / r.msPerToken;
    console.log(`| ${r.dtype} | ${r.graph} | ${r.prefillMs.toFixed(0)} | ${r.msPerToken.toFixed(1)} | ${r.tokensPerSecond.toFixed(1)} | ${r.graph === 'fast' ? `${speedup.toFixed(2)}x` : '-'} | ${r.graph === 'fast' ? same : '-'} | ${r.graph === 'fast' ? diff.toExponential(1) : '-'} |`);
    return { graph: r.graph, dtype: r.dtype, prefillMs: r.prefillMs, msPerToken: r.msPerToken, tokensPerSecond: r.tokensPerSecond, speedupOverHub: speedup, sameArgmax: same, maxLogitDiff: diff };
  });
  const dir = path.join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `decoder-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), context: CONTEXT, steps: STEPS, threads: Number(values.threads), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, text: t, rows: summary }, null, 2));
  console.log(`\nJSON: ${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
