// Engine benchmark: our engine against transformers.js 4.3.1 on the same model folder, image (our
// preprocessing's pixel values fed to both), prompt and greedy settings, CPU execution provider.
//
//   npx tsx bench/engine.bench.ts [--quick] [--runs N] [--new-tokens N] [--dtype fp32|fp16|q4|vision=quantized,embed=int8,decoder=q4] [--threads N]
//                    [--model NAME] [--engines ours,transformers.js] [--profile]
//
// Each measurement is a fresh child process (bench/worker.ts), alternating ours / theirs (the order
// rotating every round) so both share the machine's noise; the table shows medians. JSON with every run and the machine goes to
// bench/results/engine-<timestamp>.json. Nothing here asserts on timings: the targets are reported.

import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureFixtures } from '../test/fixtures/index';
import { formatVariantChoice, parseVariantChoice, type VariantChoice } from '../src/core/variants';
import { loadModel } from '../src/engine/index';
import type { EngineName, WorkerJob, WorkerResult } from './worker';
import { exportEngineAt } from './gitEngine';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.join(HERE, '..');
const RESULTS = path.join(HERE, 'results');

interface Args {
  runs: number;
  newTokens: number;
  /** a variant for every part (q4) or a per-part map (vision=quantized,embed=int8,decoder=q4) */
  dtype: VariantChoice;
  threads: number;
  model: string;
  /** a model folder to run instead of a generated fixture (--model-dir) */
  modelDir?: string;
  image: string;
  question: string;
  engines: EngineName[];
  profile: boolean;
  /** git ref whose src/engine runs as a third engine, ours@<ref> (before/after numbers in one run) */
  baseline?: string;
  /** JSON merged into our sessions' options (experiments) */
  oursSessionOptions?: Record<string, unknown>;
  /** JSON merged into the options of a further engine, `ours+options`: the working tree with and without them, alternating in one run */
  alsoOptions?: Record<string, unknown>;
  /** environment variables of that further engine's worker (with or without --also-options) */
  alsoEnv?: Record<string, string>;
}

function parseArgs(argv: string[]): Args {
  const args: Args = {
    runs: 3,
    newTokens: 64,
    dtype: 'fp32',
    threads: 0,
    model: 'bench-llava',
    image: path.join(ROOT, 'media', 'samples', 'photo.jpg'),
    question: 'Describe the picture in detail, please. Is there any text?',
    engines: ['ours', 'transformers.js'],
    profile: false,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--quick') Object.assign(args, { runs: 1, newTokens: 16 });
    else if (a === '--runs') args.runs = Number(next());
    else if (a === '--new-tokens') args.newTokens = Number(next());
    else if (a === '--dtype') {
      const parsed = parseVariantChoice(next());
      if ('error' in parsed) throw new Error(`--dtype: ${parsed.error}`);
      args.dtype = parsed.choice ?? 'fp32';
    }
    else if (a === '--threads') args.threads = Number(next());
    else if (a === '--model') args.model = next();
    else if (a === '--model-dir') args.modelDir = path.resolve(next());
    else if (a === '--image') args.image = path.resolve(next());
    else if (a === '--question') args.question = next();
    else if (a === '--engines') args.engines = next().split(',') as EngineName[];
    else if (a === '--profile') args.profile = true;
    else if (a === '--baseline') args.baseline = next();
    else if (a === '--ours-session-options') args.oursSessionOptions = JSON.parse(next()) as Record<string, unknown>;
    else if (a === '--also-options') args.alsoOptions = JSON.parse(next()) as Record<string, unknown>;
    else if (a === '--also-env') args.alsoEnv = JSON.parse(next()) as Record<string, string>;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!(args.runs >= 1) || !(args.newTokens >= 2)) throw new Error('--runs must be >= 1 and --new-tokens >= 2');
  return args;
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

function runWorker(job: WorkerJob, profileDir: string | undefined, env: Record<string, string> = {}): WorkerResult {
  const jobFile = job.resultFile.replace(/\.json$/, '.job.json');
  writeFileSync(jobFile, JSON.stringify(job));
  const execArgs = ['--import', 'tsx'];
  if (profileDir) execArgs.push('--cpu-prof', '--cpu-prof-dir', profileDir);
  const child = spawnSync(process.execPath, [...execArgs, path.join(HERE, 'worker.ts'), jobFile], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'pipe'],
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  rmSync(jobFile, { force: true });
  if (child.status !== 0) throw new Error(`${job.engine} worker failed (exit ${child.status ?? child.signal}):\n${child.stderr}`);
  const result = JSON.parse(readFileSync(job.resultFile, 'utf8')) as WorkerResult;
  rmSync(job.resultFile, { force: true });
  return result;
}

const MB = 1024 * 1024;

/** Read from node_modules directly: transformers.js's `exports` does not expose its package.json. */
function packageVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

interface Summary {
  loadMs: number;
  ttftMs: number;
  followUpTtftMs: number;
  regenerateTtftMs: number;
  decodeTokensPerSecond: number;
  generateCpuMs: number;
  peakRssMB: number;
  weightMB: number;
}

function summarise(runs: WorkerResult[]): Summary {
  return {
    loadMs: median(runs.map((r) => r.loadMs)),
    ttftMs: median(runs.map((r) => r.ttftMs)),
    followUpTtftMs: median(runs.map((r) => r.followUpTtftMs)),
    regenerateTtftMs: median(runs.map((r) => r.regenerateTtftMs)),
    decodeTokensPerSecond: median(runs.map((r) => r.decodeTokensPerSecond)),
    generateCpuMs: median(runs.map((r) => r.generateCpuMs)),
    peakRssMB: median(runs.map((r) => r.peakRssBytes / MB)),
    weightMB: median(runs.map((r) => r.weightBytes / MB)),
  };
}

/**
 * One column per engine (medians), then ours / each other engine as the median of the per-round ratios:
 * the two runs of a round ran back to back, so a busy spell on a shared machine slows both.
 */
function table(columns: [EngineName, Summary][], runs: WorkerResult[], rounds: number): string {
  const rows: [string, keyof Summary, number][] = [
    ['load (ms)', 'loadMs', 0],
    ['time to first token (ms)', 'ttftMs', 0],
    ['follow-up: time to first token (ms)', 'followUpTtftMs', 0],
    ['regenerate: time to first token (ms)', 'regenerateTtftMs', 0],
    ['decode (tokens/s)', 'decodeTokensPerSecond', 1],
    ['CPU time in generate (ms, all threads)', 'generateCpuMs', 0],
    ['peak RSS (MB)', 'peakRssMB', 0],
    ['ONNX weights loaded (MB)', 'weightMB', 0],
  ];
  const ours = columns.find(([e]) => e === 'ours')?.[1];
  const ratios = columns.filter(([e]) => e !== 'ours' && ours);
  const perRound = runs.length / rounds;
  const pairedRatio = (other: EngineName, key: keyof Summary): number => {
    const values: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const round = runs.slice(r * perRound, (r + 1) * perRound).map((x) => [x.engine, summarise([x])] as const);
      const a = round.find(([e]) => e === 'ours')?.[1][key];
      const b = round.find(([e]) => e === other)?.[1][key];
      if (a !== undefined && b) values.push(a / b);
    }
    return values.length ? median(values) : NaN;
  };
  const head = ['metric', ...columns.map(([e]) => e), ...ratios.map(([e]) => `ours / ${e} (paired)`)];
  const lines = [`| ${head.join(' | ')} |`, `| --- |${' ---: |'.repeat(head.length - 1)}`];
  for (const [label, key, d] of rows) {
    const cells = [label, ...columns.map(([, s]) => s[key].toFixed(d)), ...ratios.map(([e]) => pairedRatio(e, key).toFixed(2))];
    lines.push(`| ${cells.join(' | ')} |`);
  }
  return lines.join('\n');
}

function targets(ours: Summary | undefined, theirs: Summary | undefined): string[] {
  if (!ours) return [];
  const out: string[] = [];
  const mark = (ok: boolean) => (ok ? 'met' : 'NOT met');
  if (theirs) {
    out.push(`decode tokens/s >= transformers.js: ${mark(ours.decodeTokensPerSecond >= theirs.decodeTokensPerSecond)}`);
    out.push(`time to first token <= transformers.js: ${mark(ours.ttftMs <= theirs.ttftMs)}`);
  }
  out.push(`follow-up time to first token <= 0.15 x the first question's: ${mark(ours.followUpTtftMs <= 0.15 * ours.ttftMs)} (${(ours.followUpTtftMs / ours.ttftMs).toFixed(2)}x)`);
  const budget = 1.25 * ours.weightMB + 250;
  out.push(`peak RSS <= 1.25 x weights + 250 MB (${budget.toFixed(0)} MB): ${mark(ours.peakRssMB <= budget)}`);
  return out;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const [dir] = args.modelDir ? [args.modelDir] : await ensureFixtures([args.model]);
  mkdirSync(RESULTS, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const work = path.join(RESULTS, `.work-${process.pid}`);
  mkdirSync(work, { recursive: true });

  // Our preprocessing (PIL-exact) once, here; both engines get these pixel values.
  const pre = await loadModel(dir, { provider: 'cpu', variant: args.dtype });
  const pixels = await pre.preprocess({ path: args.image });
  await pre.dispose();
  const pixelsFile = path.join(work, 'pixels.f32');
  writeFileSync(pixelsFile, Buffer.from(pixels.pixelValues.buffer, pixels.pixelValues.byteOffset, pixels.pixelValues.byteLength));
  const engines: EngineName[] = [...args.engines];
  let baselineDir: string | undefined;
  if (args.baseline) {
    baselineDir = exportEngineAt(args.baseline);
    engines.splice(1, 0, `ours@${args.baseline}`);
  }
  if (args.alsoOptions || args.alsoEnv) engines.splice(1, 0, 'ours+options');
  const profileDir = args.profile ? path.join(RESULTS, `profile-${stamp}`) : undefined;

  const runs: WorkerResult[] = [];
  try {
    for (let r = 0; r < args.runs; r++) {
      // Rotate the order every round: whichever engine runs first in a round was measurably slower here.
      const order = engines.map((_, i) => engines[(i + r) % engines.length]);
      for (const engine of order) {
        const job: WorkerJob = {
          engine,
          dir,
          question: args.question,
          pixelsFile,
          geometry: pixels.geometry,
          newTokens: args.newTokens,
          dtype: args.dtype,
          threads: args.threads,
          resultFile: path.join(work, `${engine.replace(/[^\w.-]/g, '_')}-${r}.json`),
          engineDir: engine.startsWith('ours@') ? baselineDir : undefined,
          sessionOptions: engine === 'ours' ? args.oursSessionOptions : engine === 'ours+options' ? args.alsoOptions : undefined,
        };
        const res = runWorker(job, engine === 'ours' ? profileDir : undefined, engine === 'ours+options' ? args.alsoEnv : undefined);
        console.error(
          `run ${r + 1}/${args.runs} ${engine}: load ${res.loadMs.toFixed(0)} ms, TTFT ${res.ttftMs.toFixed(0)} ms, ` +
            `${res.decodeTokensPerSecond.toFixed(1)} tok/s, CPU ${res.generateCpuMs.toFixed(0)} ms, ${res.newTokens} tokens, peak RSS ${(res.peakRssBytes / MB).toFixed(0)} MB`,
        );
        runs.push(res);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }

  const columns = engines
    .map((e) => [e, runs.filter((r) => r.engine === e)] as const)
    .filter(([, rs]) => rs.length > 0)
    .map(([e, rs]) => [e, summarise(rs)] as [EngineName, Summary]);
  const ours = columns.find(([e]) => e === 'ours')?.[1];
  const theirs = columns.find(([e]) => e === 'transformers.js')?.[1];

  // Sanity: the comparison only means something if both produced the full count of the same tokens.
  const notes: string[] = [];
  for (const r of runs) {
    if (r.newTokens !== args.newTokens) notes.push(`${r.engine} produced ${r.newTokens} of ${args.newTokens} tokens (stopped early: EOS?)`);
  }
  const reference = runs[0]?.tokenIds.join(',');
  if (runs.some((r) => r.tokenIds.join(',') !== reference)) notes.push('the engines (or runs) did not generate identical tokens');

  const ortVersion = packageVersion('onnxruntime-node');
  const tjsVersion = packageVersion('@huggingface/transformers');
  const machine = {
    cpus: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? '',
    totalMemMB: Math.round(os.totalmem() / MB),
    loadAvg: os.loadavg(),
    platform: `${process.platform} ${process.arch}`,
    node: process.version,
    onnxruntimeNode: ortVersion,
    transformersJs: tjsVersion,
  };
  const settings = { ...args, image: path.relative(ROOT, args.image), promptTokens: runs[0]?.promptTokens };

  console.log(`\nbench: ${args.modelDir ? path.basename(args.modelDir) : args.model} ${formatVariantChoice(args.dtype)}, ${runs[0]?.promptTokens} prompt tokens, ${args.newTokens} new tokens, greedy, CPU EP, ` +
    `threads ${args.threads || "each engine's default (ours: one per physical core, unpinned; transformers.js: ONNX Runtime's, pinned)"}, medians of ${args.runs} run(s); ${machine.cpus} CPUs, node ${machine.node}, onnxruntime-node ${ortVersion}\n`);
  console.log(table(columns, runs, args.runs));
  console.log('');
  for (const t of targets(ours, theirs)) console.log(`target: ${t}`);
  for (const n of notes) console.log(`note: ${n}`);
  if (!notes.length) console.log(`tokens: every run generated the same ${args.newTokens} tokens`);

  const file = path.join(RESULTS, `engine-${stamp}.json`);
  writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), machine, settings, summary: Object.fromEntries(columns), targets: targets(ours, theirs), notes, runs }, null, 2));
  console.log(`\nwrote ${path.relative(ROOT, file)}${profileDir ? `; CPU profiles of our worker in ${path.relative(ROOT, profileDir)}` : ''}`);
}

main().catch((err) => {
  console.error(err instanceof Error ? (err.stack ?? err.message) : err);
  process.exit(1);
});
