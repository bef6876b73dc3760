// `llava serve` throughput: N concurrent chat-completion requests (each a different image, greedy, a
// fixed new-token cap) against the in-process server, queued one at a time (--max-batch 1) versus
// decoded together through generateBatch (--max-batch 4, 8). Reports wall time, requests per minute and
// latency per request; checks every answer has the full token count. Nothing asserts on timings.
//
//   npx tsx bench/serve.bench.ts [--model tiny-llava] [--requests 16] [--new-tokens 16] [--batch 1,4,8] [--threads 2]
// Table to stdout; JSON to bench/results/serve-<timestamp>.json.

import { mkdirSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { loadModel } from '../src/engine/index';
import { startServer } from '../src/server/index';
import { ensureFixtures, fixtureDir } from '../test/fixtures/index';

const HERE = path.dirname(fileURLToPath(import.meta.url));

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'tiny-llava' },
    requests: { type: 'string', default: '16' },
    'new-tokens': { type: 'string', default: '16' },
    batch: { type: 'string', default: '1,4,8' },
    threads: { type: 'string', default: '2' },
  },
});
const N = Number(values.requests);
const TOKENS = Number(values['new-tokens']);

async function main(): Promise<void> {
  await ensureFixtures([values.model!]);
  const model = await loadModel(fixtureDir(values.model!), { provider: 'cpu', variant: 'fp32', threads: Number(values.threads) });
  const images: string[] = [];
  for (let i = 0; i < N; i++) {
    const w = 48 + ((i * 13) % 80);
    const h = 40 + ((i * 7) % 64);
    const px = Buffer.alloc(w * h * 3);
    for (let p = 0; p < px.length; p++) px[p] = (p * (i + 3) + i * 29) & 255;
    images.push(`data:image/png;base64,${(await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer()).toString('base64')}`);
  }

  interface Row { maxBatch: number; wallS: number; requestsPerMin: number; meanLatencyS: number; maxLatencyS: number; batches: number }
  const rows: Row[] = [];
  for (const maxBatch of values.batch!.split(',').map(Number)) {
    const server = await startServer({ model, modelName: 'm', port: 0, maxBatch, maxQueue: N + 1 });
    const ask = async (url: string) => {
      const t = performance.now();
      const res = await fetch(`${server.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', max_tokens: TOKENS, messages: [{ role: 'user', content: [{ type: 'text', text: 'Describe this image.' }, { type: 'image_url', image_url: { url } }] }] }),
      });
      const body = (await res.json()) as { usage?: { completion_tokens: number } };
      if (res.status !== 200 || body.usage?.completion_tokens !== TOKENS) throw new Error(`bad answer: ${res.status} ${JSON.stringify(body).slice(0, 200)}`);
      return (performance.now() - t) / 1000;
    };
    await ask(images[0]); // warm-up, untimed
    const before = server.scheduler.batches;
    const t0 = performance.now();
    const latencies = await Promise.all(images.map(ask));
    const wallS = (performance.now() - t0) / 1000;
    rows.push({
      maxBatch, wallS, requestsPerMin: (N / wallS) * 60,
      meanLatencyS: latencies.reduce((a, b) => a + b, 0) / N, maxLatencyS: Math.max(...latencies), batches: server.scheduler.batches - before,
    });
    await server.close();
  }
  await model.dispose();

  console.log(`llava serve, ${values.model}, ${N} concurrent requests, ${TOKENS} new tokens each, CPU, ${values.threads} threads`);
  console.log('| --max-batch | decoder runs | wall s | requests/min | mean latency s | max latency s |');
  console.log('| --- | --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.maxBatch} | ${r.batches} | ${r.wallS.toFixed(2)} | ${r.requestsPerMin.toFixed(1)} | ${r.meanLatencyS.toFixed(2)} | ${r.maxLatencyS.toFixed(2)} |`);
  mkdirSync(path.join(HERE, 'results'), { recursive: true });
  const file = path.join(HERE, 'results', `serve-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify({ model: values.model, requests: N, newTokens: TOKENS, threads: Number(values.threads), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, rows }, null, 2));
  console.log(`\n${file}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
