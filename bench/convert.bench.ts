// Conversion benchmark: throughput (checkpoint MB read per second) and peak RSS of `convertCheckpoint`
// on a generated llava-hf checkpoint of realistic shape: the real CLIP ViT-L/14-336 tower and projector,
// and a LLaMA with 7B's vocabulary and proportions but fewer, narrower layers (BF16, 3 shards, about
// 1.9 GB). Each dtype converts in a fresh process so its peak RSS is its own. The checkpoint lives
// outside the repository (default /tmp/llava-convert-bench) and is reused when present.
// Nothing here asserts on timings; the 7B estimate is the measured rate applied to 7B's 14.1 GB.
//
//   npx tsx bench/convert.bench.ts [--dir /tmp/llava-convert-bench] [--dtypes fp32,fp16,q4,q4f16] [--text-layers 10]
// Table to stdout; JSON to bench/results/convert-<timestamp>.json.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { CONVERT_DTYPES, convertCheckpoint, SafetensorsCheckpoint, type ConvertDtype, type LlavaSpec } from '../src/convert';
import { FIXTURES, type FixtureDef } from '../test/fixtures/models';
import { writeLlavaCheckpoint } from '../test/helpers/llavaCheckpoint';
import { peakRssBytes } from './peakRss';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const RESULTS = path.join(HERE, 'results');
/** llava-1.5-7b-hf: 7.06 B parameters in BF16/F16 */
const SEVEN_B_BYTES = 7.06e9 * 2;
/** its largest tensor: lm_head / embed_tokens, 32064 x 4096, as float32 while converting */
const SEVEN_B_LARGEST_F32 = 32064 * 4096 * 4;

const { values } = parseArgs({
  options: {
    dir: { type: 'string', default: path.join(os.tmpdir(), 'llava-convert-bench') },
    dtypes: { type: 'string', default: CONVERT_DTYPES.join(',') },
    'text-layers': { type: 'string', default: '10' },
    child: { type: 'string' }, // internal: convert this dtype in this (fresh) process, print JSON
  },
});

function benchDef(textLayers: number): FixtureDef {
  const tiny = FIXTURES.find((f) => f.spec.name === 'tiny-llava')!;
  const spec: LlavaSpec = {
    ...tiny.spec,
    name: 'convert-bench',
    // llava-1.5's real vision tower: CLIP ViT-L/14 at 336 px
    vision: { ...tiny.spec.vision, imageSize: 336, patchSize: 14, hidden: 1024, intermediate: 4096, heads: 16, layers: 24 },
    text: { ...tiny.spec.text, hidden: 2048, intermediate: 5504, heads: 16, kvHeads: 16, layers: textLayers, vocab: 32064 },
  };
  return { spec, tokenizer: 'llama', isDefault: false };
}

const ckptDir = path.join(values.dir!, 'checkpoint');
const outDir = path.join(values.dir!, 'out');

if (values.child) {
  const dtype = values.child as ConvertDtype;
  rmSync(outDir, { recursive: true, force: true });
  const result = convertCheckpoint({ from: ckptDir, out: outDir, dtypes: [dtype] });
  const largest = Math.max(...[...new SafetensorsCheckpoint(ckptDir).tensors.values()].map((t) => (t.byteLength / (t.dtype === 'F32' ? 4 : 2)) * 4));
  process.stdout.write(JSON.stringify({ dtype, seconds: result.seconds, bytesRead: result.bytesRead, maxRssBytes: peakRssBytes(), largestTensorF32Bytes: largest, external: result.external }) + '\n');
  process.exit(0);
}

const def = benchDef(Number(values['text-layers']));
const stamp = path.join(ckptDir, `.bench-${def.spec.text.layers}`);
if (!existsSync(stamp)) {
  rmSync(ckptDir, { recursive: true, force: true });
  const t0 = performance.now();
  const bytes = writeLlavaCheckpoint(ckptDir, def, { layout: 'model.language_model', dtype: 'BF16', shards: 3, memo: false });
  writeFileSync(stamp, '');
  console.log(`generated ${(bytes / 1e9).toFixed(2)} GB checkpoint in ${((performance.now() - t0) / 1000).toFixed(0)} s -> ${ckptDir}`);
}

interface Row {
  dtype: string;
  seconds: number;
  bytesRead: number;
  maxRssBytes: number;
  largestTensorF32Bytes: number;
  external: string[];
}
const rows: Row[] = [];
for (const dtype of values.dtypes!.split(',')) {
  const child = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--dir', values.dir!, '--child', dtype], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (child.status !== 0) throw new Error(`convert ${dtype} failed: ${child.stderr}`);
  rows.push(JSON.parse(child.stdout.trim().split('\n').pop()!));
}
rmSync(outDir, { recursive: true, force: true });

const mb = (b: number) => b / 1e6;
console.log('\n| dtype | read (MB) | seconds | MB/s | peak RSS (MB) | RSS - largest tensor (MB) | 7B estimate (min) |');
console.log('| --- | --- | --- | --- | --- | --- | --- |');
const summary = rows.map((r) => {
  const rate = mb(r.bytesRead) / r.seconds;
  const estimateMin = mb(SEVEN_B_BYTES) / rate / 60;
  console.log(`| ${r.dtype} | ${mb(r.bytesRead).toFixed(0)} | ${r.seconds.toFixed(1)} | ${rate.toFixed(1)} | ${mb(r.maxRssBytes).toFixed(0)} | ${mb(r.maxRssBytes - r.largestTensorF32Bytes).toFixed(0)} | ${estimateMin.toFixed(1)} |`);
  return { ...r, mbPerSecond: rate, sevenBEstimateMinutes: estimateMin };
});
console.log(`\n7B: ${mb(SEVEN_B_BYTES).toFixed(0)} MB to read per dtype; its largest tensor as float32 is ${mb(SEVEN_B_LARGEST_F32).toFixed(0)} MB.`);
mkdirSync(RESULTS, { recursive: true });
const file = path.join(RESULTS, `convert-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), cpus: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version, spec: def.spec, rows: summary }, null, 2));
console.log(`JSON: ${file}`);
