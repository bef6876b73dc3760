// `npm run bench`: what users feel, at two sizes, in one run. For each of bench-llava (hidden 512, 8 layers, CLIP
// 224) and bench-207m (the LLaVA-1.5 shape of 207 M parameters, a 602-token prompt), fp32 and q4:
// engine.bench.ts (load, first token, decode, follow-up and Regenerate first token, peak RSS; ours and
// transformers.js alternating, fresh processes; a dtype a fixture lacks is skipped), then caption.bench.ts in q4
// where the model has it (images per minute at the default
// batch against a one-image-at-a-time transformers.js loop), then decoder.bench.ts (hub vs fast graphs). Each
// part prints its own table and writes its own JSON under bench/results/; this prints one summary table (medians,
// ours / transformers.js) and writes bench/results/summary-<timestamp>.json. Nothing asserts on timings.
//
//   npm run bench                          # the whole matrix: about 30 minutes on 2 cores
//   npm run bench -- --quick               # bench-llava fp32 only, one round of 16 tokens
//   npm run bench -- --models bench-207m --dtypes q4 --runs 3 --skip captions,decoder

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');
const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    models: { type: 'string', default: 'bench-llava,bench-207m' },
    dtypes: { type: 'string', default: 'fp32,q4' },
    runs: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '32' },
    skip: { type: 'string', default: '' },
  },
});
const quick = values.quick!;
const models = quick ? ['bench-llava'] : values.models!.split(',');
const dtypes = quick ? ['fp32'] : values.dtypes!.split(',');
const skip = new Set(quick ? ['captions', 'decoder'] : values.skip!.split(',').filter(Boolean));

/** Runs one benchmark script in its own process, its table passed through; returns the JSON file it names. */
function part(script: string, args: string[], written: RegExp): string {
  process.stderr.write(`\n[bench] ${script} ${args.join(' ')}\n`);
  const run = spawnSync(process.execPath, ['--import', 'tsx', path.join(HERE, script), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 1 << 26 });
  process.stdout.write(run.stdout ?? '');
  if (run.status !== 0) throw new Error(`${script} ${args.join(' ')} exited with ${run.status}`);
  const m = written.exec(run.stdout ?? '');
  if (!m) throw new Error(`${script} did not say where it wrote its JSON`);
  return path.resolve(ROOT, m[1].trim());
}

interface EngineSummary {
  loadMs: number;
  ttftMs: number;
  followUpTtftMs: number;
  regenerateTtftMs: number;
  decodeTokensPerSecond: number;
  peakRssMB: number;
}
interface Row {
  model: string;
  dtype: string;
  ours: EngineSummary;
  theirs: EngineSummary;
  captions?: { oursPerMinute: number; theirsPerMinute: number; batch: number };
  files: string[];
}

/** Whether a fixture holds a dtype's decoder (bench-llava has fp32 and fp16 only); the first engine run makes the fixture. */
function holds(model: string, dtype: string): boolean {
  return existsSync(path.join(ROOT, 'test', 'fixtures', 'models', model, 'onnx', `decoder_model_merged${dtype === 'fp32' ? '' : `_${dtype}`}.onnx`));
}

const rows: Row[] = [];
for (const model of models) {
  for (const dtype of dtypes) {
    if (rows.some((r) => r.model === model) && !holds(model, dtype)) {
      process.stderr.write(`\n[bench] ${model} has no ${dtype} files: skipped\n`);
      continue;
    }
    const engineArgs = ['--model', model, '--dtype', dtype, ...(quick ? ['--quick'] : ['--runs', values.runs!, '--new-tokens', values['new-tokens']!])];
    const file = part('engine.bench.ts', engineArgs, /wrote (\S+\.json)/);
    const summary = JSON.parse(readFileSync(file, 'utf8')).summary as Record<string, EngineSummary>;
    const row: Row = { model, dtype, ours: summary.ours, theirs: summary['transformers.js'], files: [path.relative(ROOT, file)] };
    // captioning once per model, in q4 where the model has it (what a CPU user gets), else in the last dtype run
    const captionDtype = dtypes.includes('q4') && holds(model, 'q4') ? 'q4' : dtypes.filter((d) => holds(model, d)).at(-1);
    if (!skip.has('captions') && dtype === captionDtype) {
      const images = model === 'bench-207m' ? '16' : '24';
      const captions = part('caption.bench.ts', ['--model', model, '--dtype', dtype, '--images', images, '--batch', '4', '--threads', '0', '--memory-images', '4', '--modes', 'batched,transformers.js'], /JSON: (\S+\.json)/);
      const result = JSON.parse(readFileSync(captions, 'utf8')) as { rows: { mode: string; batch: number; imagesPerMinute: number }[] };
      const ours = result.rows.find((r) => r.mode === 'batched');
      const theirs = result.rows.find((r) => r.mode === 'transformers.js loop');
      if (ours && theirs) row.captions = { oursPerMinute: ours.imagesPerMinute, theirsPerMinute: theirs.imagesPerMinute, batch: ours.batch };
      row.files.push(path.relative(ROOT, captions));
    }
    rows.push(row);
  }
}
const decoderFile = skip.has('decoder') ? undefined : part('decoder.bench.ts', [], /JSON: (\S+\.json)/);

const f = (v: number, d = 0) => v.toFixed(d);
const pair = (a: number, b: number, d = 0) => `${f(a, d)} / ${f(b, d)} (${(a / b).toFixed(2)}x)`;
console.log('\nSummary: ours / transformers.js (medians; ratio of medians). Each engine at its default threads.\n');
console.log('| model | dtype | load ms | first token ms | decode tok/s | follow-up first token ms | Regenerate first token ms | peak RSS MB | captions/min (batch 4) |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of rows) {
  const c = r.captions ? pair(r.captions.oursPerMinute, r.captions.theirsPerMinute, 1) : '-';
  console.log(
    `| ${r.model} | ${r.dtype} | ${pair(r.ours.loadMs, r.theirs.loadMs)} | ${pair(r.ours.ttftMs, r.theirs.ttftMs)} | ${pair(r.ours.decodeTokensPerSecond, r.theirs.decodeTokensPerSecond, 1)} | ` +
      `${pair(r.ours.followUpTtftMs, r.theirs.followUpTtftMs)} | ${pair(r.ours.regenerateTtftMs, r.theirs.regenerateTtftMs)} | ${pair(r.ours.peakRssMB, r.theirs.peakRssMB)} | ${c} |`,
  );
}
const dir = path.join(HERE, 'results');
mkdirSync(dir, { recursive: true });
const out = path.join(dir, `summary-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(out, JSON.stringify({ date: new Date().toISOString(), quick, rows, decoder: decoderFile && path.relative(ROOT, decoderFile) }, null, 2));
console.log(`\nwrote ${path.relative(ROOT, out)}`);
