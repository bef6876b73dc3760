// Decoder graph kinds, hub vs fast, on the same made-up weights: a LLaMA-7B-shaped-but-smaller
// decoder (hidden 1024, 12 layers, 16 heads / 4 KV heads, intermediate 2816, vocab 32000), fp32 and q4.
// Each runs through the engine's LanguageModel as a user's model would: the hub graph (its cache grows
// by a copy every step), the fast graph with the cache grown the same way, and the fast graph with the
// engine's preallocated cache that GroupQueryAttention appends in place (the run's new keys and values fetched
// and appended by the engine; and, beside it, `present.*` fetched as before, which onnxruntime-node copies
// out whole every step); and the hub graph as the engine loads a Hub file (onnxView.ts decoderEdits: logits of the
// last position, the run's new keys and values returned, the cache preallocated and fed whole). Each prefills a 600-token
// context, then decodes one token at a time on the CPU provider, the graphs of a dtype stepping in
// alternation (the order rotating every step) so that load on a shared machine falls on all alike;
// the table gives decode ms/token and tokens/s (median over the steps), the mean ms/token (what a user waits,
// slow steps included: collecting the cache a graph returns every step shows there), the speed-up over hub,
// and, per dtype, whether the two graphs agree (max |logit difference| at the first decode step and the
// share of steps with the same argmax). Inputs are fixed seeded embeddings, so both graphs see exactly the same thing.
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
import { buildDecoder, buildEmbedTokens, buildFastDecoder, headDim, type LlavaSpec } from '../src/convert';
import { LanguageModel, type KvCache } from '../src/engine/decoder';
import { decoderEdits } from '../src/engine/onnxView';
import { sessionOptions as engineSessionOptions } from '../src/engine/providers';
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

type Kind = 'hub' | 'hub, as the engine loads it' | 'fast, grown by copy' | 'fast, in place' | 'fast, in place, present copied out';
const KINDS: Kind[] = ['hub', 'hub, as the engine loads it', 'fast, grown by copy', 'fast, in place', 'fast, in place, present copied out'];

interface Run {
  graph: Kind;
  dtype: string;
  msPerToken: number;
  meanMsPerToken: number;
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

// the engine's own session options (no spinning threads, as users run), at the bench's thread count
const sessionOptions = (): ort.InferenceSession.SessionOptions => engineSessionOptions('cpu', { threads: Number(values.threads) });
/** embed_tokens is only checked by the LanguageModel here (the bench feeds embeddings); one session serves all */
let embedSession: ort.InferenceSession | undefined;

/** One decoder graph behind the engine's LanguageModel, prefilled, stepping one token at a time. */
async function open(graph: Kind, dtype: string) {
  const opts = { fp16Weights: false, q4: dtype === 'q4', source: prngSource(spec.name) };
  const built = (graph.startsWith('hub') ? buildDecoder : buildFastDecoder)(spec, opts).encode();
  const bytes = graph === 'hub, as the engine loads it' ? decoderEdits(built)!.model : built;
  const session = await ort.InferenceSession.create(bytes, sessionOptions());
  embedSession ??= await ort.InferenceSession.create(buildEmbedTokens(spec, { fp16Weights: false, source: prngSource(spec.name) }).encode(), sessionOptions());
  const inPlace = graph.startsWith('fast, in place');
  // 'present copied out': the in-place cache as before 2026-12-05, present.* fetched (onnxruntime-node copies the
  // whole cache out every step) instead of the run's new keys and values
  const tuning = { inPlaceKv: inPlace || graph === 'hub, as the engine loads it', fetchPresent: graph === 'fast, in place, present copied out' };
  const lm = new LanguageModel(embedSession, session, { embed: 'embed_tokens', decoder: graph }, { numKvHeads: t.kvHeads, headDim: hd }, tuning);
  if (lm.inPlaceKv !== inPlace) throw new Error(`${graph}: the engine ${lm.inPlaceKv ? 'did' : 'did not'} choose the in-place cache`);
  if (lm.holedKv !== (graph === 'hub, as the engine loads it')) throw new Error(`${graph}: the engine ${lm.holedKv ? 'did' : 'did not'} feed a preallocated cache whole`);
  const embeds = normal('decode-bench/embeds', (CONTEXT + STEPS) * t.hidden, 1); // [context + steps, hidden]
  const t0 = performance.now();
  let { cache } = await lm.forward(embeds.subarray(0, CONTEXT * t.hidden), new Array(CONTEXT).fill(1), lm.emptyCache(1));
  const run: Run = { graph, dtype, msPerToken: 0, meanMsPerToken: 0, tokensPerSecond: 0, prefillMs: performance.now() - t0, firstLogits: new Float32Array(0), argmax: [] };
  const times: number[] = [];
  return {
    run,
    async step(s: number): Promise<void> {
      const start = performance.now();
      const total = CONTEXT + s + 1;
      const out: { logits: Float32Array; cache: KvCache } = await lm.forward(embeds.subarray((total - 1) * t.hidden, total * t.hidden), new Array(total).fill(1), cache);
      times.push(performance.now() - start);
      cache = out.cache;
      if (s === 0) run.firstLogits = out.logits.slice();
      run.argmax.push(argmax(out.logits, 0, t.vocab));
    },
    async close(): Promise<Run> {
      await session.release();
      const sorted = [...times].sort((a, b) => a - b);
      run.msPerToken = sorted[Math.floor(sorted.length / 2)];
      run.meanMsPerToken = times.reduce((a, b) => a + b, 0) / times.length;
      run.tokensPerSecond = 1000 / run.msPerToken;
      return run;
    },
  };
}

/**
 * The graphs of one dtype step in alternation (the order rotating every step), so load from other
 * processes on a shared machine falls on all alike; medians over the steps.
 */
async function compareDtype(dtype: string): Promise<Run[]> {
  const graphs = [];
  for (const kind of KINDS) graphs.push(await open(kind, dtype));
  for (let s = 0; s < STEPS; s++) {
    for (let k = 0; k < graphs.length; k++) await graphs[(s + k) % graphs.length].step(s);
  }
  const runs: Run[] = [];
  for (const g of graphs) runs.push(await g.close());
  return runs;
}

async function main(): Promise<void> {
  const runs: Run[] = [];
  for (const dtype of values.dtypes!.split(',')) {
    const rows = await compareDtype(dtype);
    runs.push(...rows);
    console.error(`${dtype}: ${rows.map((r) => `${r.graph} ${r.msPerToken.toFixed(1)}`).join(', ')} ms/token`);
  }

  console.log(`\nDecode at a ${CONTEXT}-token context, ${STEPS} steps, ${values.threads} threads, CPU provider (${os.cpus()[0]?.model}, ${os.cpus().length} cores)\n`);
  console.log('| dtype | graph | prefill (ms) | decode ms/token | tokens/s | vs hub | mean ms/token | vs hub (means) | argmax same as hub | max logit diff (step 1) |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  const summary = runs.map((r) => {
    const hub = runs.find((o) => o.dtype === r.dtype && o.graph === 'hub')!;
    let diff = 0;
    for (let i = 0; i < r.firstLogits.length; i++) diff = Math.max(diff, Math.abs(r.firstLogits[i] - hub.firstLogits[i]));
    const same = r.argmax.filter((a, i) => a === hub.argmax[i]).length / r.argmax.length;
    const speedup = hub.msPerToken / r.msPerToken;
    const meanSpeedup = hub.meanMsPerToken / r.meanMsPerToken;
    const other = r.graph !== 'hub';
    console.log(`| ${r.dtype} | ${r.graph} | ${r.prefillMs.toFixed(0)} | ${r.msPerToken.toFixed(1)} | ${r.tokensPerSecond.toFixed(1)} | ${other ? `${speedup.toFixed(2)}x` : '-'} | ${r.meanMsPerToken.toFixed(1)} | ${other ? `${meanSpeedup.toFixed(2)}x` : '-'} | ${other ? `${(100 * same).toFixed(0)} %` : '-'} | ${other ? diff.toExponential(1) : '-'} |`);
    return { graph: r.graph, dtype: r.dtype, prefillMs: r.prefillMs, msPerToken: r.msPerToken, meanMsPerToken: r.meanMsPerToken, tokensPerSecond: r.tokensPerSecond, speedupOverHub: speedup, meanSpeedupOverHub: meanSpeedup, argmaxAgreement: same, maxLogitDiff: diff };
  });
  const dir = path.join(HERE, 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `decoder-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), context: CONTEXT, steps: STEPS, threads: Number(values.threads), cpu: os.cpus()[0]?.model, cpus: os.cpus().length, text: t, rows: summary }, null, 2));
  console.log(`\nJSON: ${file}`);
  await embedSession?.release();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
