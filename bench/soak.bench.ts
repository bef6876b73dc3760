// Soak: many questions through the real engine process (EngineClient -> forked engine -> tiny model), as
// the extension asks them, with the images of the conversation re-sent each time as bytes. Measures the
// engine process's RSS after a warm-up and at the end (growth must stay under 10 %), its open file
// descriptors (/proc/<pid>/fd, Linux) and the host side's active handles: a leak shows as growth.
// A few questions are stopped part-way (the Stop path) and a few images are hostile (errors must not leak).
// Nothing here asserts on timings.
//
//   npx tsx bench/soak.bench.ts [--questions 1000] [--warmup 100] [--new-tokens 8] [--model tiny-llava]
// Table to stdout; JSON to bench/results/soak-<timestamp>.json. Exit code 1 when RSS grew >= 10 % or
// descriptors / handles grew.

import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { EngineClient, type LoadParams } from '../src/engine-process/index';
import { ensureFixtures } from '../test/fixtures/index';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');
const RESULTS = path.join(HERE, 'results');

const { values } = parseArgs({
  options: {
    questions: { type: 'string', default: '1000' },
    warmup: { type: 'string', default: '100' },
    'new-tokens': { type: 'string', default: '8' },
    model: { type: 'string', default: 'tiny-llava' },
  },
});
const QUESTIONS = Number(values.questions);
const WARMUP = Math.min(Number(values.warmup), QUESTIONS - 1);
const NEW_TOKENS = Number(values['new-tokens']);

function fdCount(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return undefined;
  }
}

async function main(): Promise<number> {
  const [modelDir] = await ensureFixtures([values.model!]);
  const client = new EngineClient({
    modulePath: path.join(ROOT, 'src/engine-process/main.ts'),
    execArgv: ['--import', 'tsx'],
    env: { LLAVA_ENGINE_PROCESS: '1' },
  });
  const params: LoadParams = { modelDir, provider: 'cpu', threads: 1 };
  const images: Uint8Array[] = [];
  for (let i = 0; i < 8; i++) {
    const w = 32 + i * 9;
    const h = 24 + i * 7;
    const px = Buffer.alloc(w * h * 3);
    for (let p = 0; p < px.length; p++) px[p] = (p * (i + 3) + i * 29) & 255;
    images.push(new Uint8Array(await sharp(px, { raw: { width: w, height: h, channels: 3 } }).png().toBuffer()));
  }
  const hostile = [new Uint8Array(Buffer.from('not an image')), new Uint8Array(0)];

  let warm: { rss: number; fds?: number; handles: number } | undefined;
  const series: { question: number; rssMiB: number; fds?: number }[] = [];
  let answered = 0;
  let stopped = 0;
  let failed = 0;
  const started = performance.now();
  for (let q = 0; q < QUESTIONS; q++) {
    const bad = q % 97 === 96;
    const image = bad ? { bytes: hostile[q % 2], name: 'bad.png' } : { bytes: images[q % images.length], name: `img${q % images.length}.png` };
    // a two-turn conversation now and then: earlier turns and their images are re-sent, as the chat does
    const turns =
      q % 5 === 0
        ? [
            { role: 'user' as const, text: 'What is this?', images: [{ bytes: images[(q + 1) % images.length], name: 'first.png' }] },
            { role: 'assistant' as const, text: 'A pattern.' },
            { role: 'user' as const, text: `And this one? (${q})`, images: [image] },
          ]
        : [{ role: 'user' as const, text: `Question ${q}: describe it.`, images: [image] }];
    const abort = new AbortController();
    const stopThis = q % 50 === 25;
    try {
      for await (const ev of client.generate(params, turns, { maxNewTokens: stopThis ? 10_000 : NEW_TOKENS, temperature: q % 3 ? 0.8 : undefined, seed: q, signal: abort.signal })) {
        if (ev.type === 'delta' && stopThis) abort.abort();
        if (ev.type === 'done') ev.stats.stopReason === 'aborted' ? stopped++ : answered++;
      }
    } catch (err) {
      if ((err as { code?: string }).code === 'ABORTED') stopped++;
      else if (bad) failed++;
      else throw err;
    }
    if (q + 1 === WARMUP) {
      const s = await client.status();
      warm = { rss: s!.rssBytes, fds: fdCount(client.pid), handles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length };
    }
    if ((q + 1) % 100 === 0) {
      const rss = (await client.status())!.rssBytes;
      series.push({ question: q + 1, rssMiB: Math.round(rss / 1048576), fds: fdCount(client.pid) });
      process.stderr.write(`[soak] ${q + 1}/${QUESTIONS}: engine RSS ${Math.round(rss / 1048576)} MiB, ${fdCount(client.pid) ?? '?'} fds\n`);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  const s = await client.status();
  const end = { rss: s!.rssBytes, fds: fdCount(client.pid), handles: (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length };
  const pid = client.pid;
  client.dispose();

  const growth = (end.rss - warm!.rss) / warm!.rss;
  const result = {
    questions: QUESTIONS, warmup: WARMUP, newTokens: NEW_TOKENS, model: values.model, pid, seconds: Math.round(seconds * 10) / 10,
    answered, stopped, failedHostile: failed,
    rssWarmMiB: Math.round(warm!.rss / 1048576), rssEndMiB: Math.round(end.rss / 1048576), rssGrowthPercent: Math.round(growth * 1000) / 10,
    fdsWarm: warm!.fds, fdsEnd: end.fds, hostHandlesWarm: warm!.handles, hostHandlesEnd: end.handles, series,
  };
  console.log('| questions | answered | stopped | hostile failed | RSS after warm-up | RSS at end | growth | fds warm -> end | host handles warm -> end | s |');
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  console.log(`| ${QUESTIONS} | ${answered} | ${stopped} | ${failed} | ${result.rssWarmMiB} MiB | ${result.rssEndMiB} MiB | ${result.rssGrowthPercent} % | ${end.fds === undefined ? 'n/a' : `${warm!.fds} -> ${end.fds}`} | ${warm!.handles} -> ${end.handles} | ${result.seconds} |`);
  mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2) + '\n');
  console.log(`JSON: ${path.relative(ROOT, file)}`);
  const leaked = growth >= 0.1 || (end.fds !== undefined && warm!.fds !== undefined && end.fds > warm!.fds) || end.handles > warm!.handles;
  return leaked ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(2);
  },
);
