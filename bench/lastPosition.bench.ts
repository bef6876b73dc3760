// The engine's last-position edit (src/engine/onnxView.ts) on one decoder whose weights are external data: a
// prefill from an empty cache and a decode step at that context, as the file is and as the engine loads it,
// each graph in its own processes (alternating), timed in CPU milliseconds (steadier than wall time on a shared
// machine). Make such a folder with bench/externalize.ts.
//
//   npx tsx bench/lastPosition.bench.ts --file /tmp/bench-207m-external/onnx/decoder_model_merged.onnx
//   (options: --context 602 --processes 3 --runs 4 --steps 35)
//
// Table to stdout; JSON to bench/results/last-position-<timestamp>.json. Nothing asserts on timings.

import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import * as ort from 'onnxruntime-node';
import { createSession } from '../src/engine/onnx';
import { sessionOptions } from '../src/engine/providers';

const { values } = parseArgs({
  options: {
    file: { type: 'string' },
    context: { type: 'string', default: '602' },
    processes: { type: 'string', default: '3' },
    runs: { type: 'string', default: '4' },
    steps: { type: 'string', default: '35' },
    child: { type: 'string' },
  },
});
if (!values.file) throw new Error('--file DECODER.onnx is required (a decoder whose weights are external data)');
const file = path.resolve(values.file);
const T = Number(values.context);

type Graph = 'as is' | 'edited';
interface Sample {
  graph: Graph;
  /** CPU ms of each prefill after the first */
  prefill: number[];
  /** median CPU ms of a decode step at context T */
  decodeStep: number;
}

async function measure(graph: Graph): Promise<Sample> {
  const s = await createSession(file, sessionOptions('cpu', {}), { view: graph === 'edited' ? 'decoder' : 'file', split: false });
  const logits = s.outputMetadata.find((m) => m.name === 'logits') as unknown as { shape: Array<number | string> };
  if ((graph === 'edited') !== (logits.shape[1] === 1)) throw new Error(`${graph}: logits ${JSON.stringify(logits.shape)}: is the file's data external?`);
  const embeds = s.inputMetadata.find((m) => m.name === 'inputs_embeds') as unknown as { shape: number[] };
  const H = embeds.shape[2];
  const feeds = (t: number, past: number): Record<string, ort.Tensor> => {
    const f: Record<string, ort.Tensor> = {
      inputs_embeds: new ort.Tensor('float32', Float32Array.from({ length: t * H }, (_, i) => Math.sin(i * 0.37) * 0.5), [1, t, H]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + t).fill(1n), [1, past + t]),
    };
    if (s.inputNames.includes('position_ids')) f.position_ids = new ort.Tensor('int64', BigInt64Array.from({ length: t }, (_, i) => BigInt(past + i)), [1, t]);
    for (const m of s.inputMetadata) {
      if (!m.name.startsWith('past_key_values.')) continue;
      const [, heads, , dim] = (m as unknown as { shape: number[] }).shape;
      f[m.name] = new ort.Tensor('float32', new Float32Array(heads * past * dim).fill(0.01), [1, heads, past, dim]);
    }
    return f;
  };
  const cpu = async (f: Record<string, ort.Tensor>) => {
    const c = process.cpuUsage();
    await s.run(f);
    const u = process.cpuUsage(c);
    return (u.user + u.system) / 1000;
  };
  const prefill: number[] = [];
  const pf = feeds(T, 0);
  for (let r = 0; r <= Number(values.runs); r++) {
    const ms = await cpu(pf);
    if (r > 0) prefill.push(ms); // the first run pays for first touches
  }
  const step = feeds(1, T);
  const steps: number[] = [];
  for (let r = 0; r < Number(values.steps) + 5; r++) {
    const ms = await cpu(step);
    if (r >= 5) steps.push(ms);
  }
  await s.release();
  return { graph, prefill, decodeStep: median(steps) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

async function main(): Promise<void> {
  if (values.child) {
    process.stdout.write(JSON.stringify(await measure(values.child as Graph)) + '\n');
    return;
  }
  const samples: Sample[] = [];
  for (let p = 0; p < Number(values.processes); p++) {
    for (const graph of (p % 2 ? ['edited', 'as is'] : ['as is', 'edited']) as Graph[]) {
      const args = ['--import', 'tsx', fileURLToPath(import.meta.url), '--file', file, '--context', String(T), '--runs', values.runs!, '--steps', values.steps!, '--child', graph];
      const child = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (child.status !== 0) throw new Error(`${graph}: ${child.stderr}`);
      const sample = JSON.parse(child.stdout.trim().split('\n').pop()!) as Sample;
      samples.push(sample);
      console.log(`${graph}: prefill ${sample.prefill.map((x) => x.toFixed(0)).join(' ')} ms CPU, decode step ${sample.decodeStep.toFixed(1)} ms CPU`);
    }
  }
  const row = (g: Graph) => {
    const s = samples.filter((x) => x.graph === g);
    const pre = s.flatMap((x) => x.prefill);
    const dec = s.map((x) => x.decodeStep);
    return { pre: median(pre), preRange: [Math.min(...pre), Math.max(...pre)], dec: median(dec), decRange: [Math.min(...dec), Math.max(...dec)] };
  };
  const [a, b] = [row('as is'), row('edited')];
  console.log(`\n${path.basename(file)}, ${T}-token prefill and a decode step at that context, CPU ms, ${values.processes} processes per graph\n`);
  console.log('| graph | prefill (median, range) | decode step (median, range) |\n| --- | --- | --- |');
  for (const [g, r] of [['as is', a], ['edited', b]] as const) console.log(`| ${g} | ${r.pre.toFixed(0)} (${r.preRange.map((x) => x.toFixed(0)).join('-')}) | ${r.dec.toFixed(1)} (${r.decRange.map((x) => x.toFixed(1)).join('-')}) |`);
  console.log(`\nedited / as is: prefill ${(b.pre / a.pre).toFixed(2)}x, decode step ${(b.dec / a.dec).toFixed(2)}x`);
  const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results');
  mkdirSync(dir, { recursive: true });
  const out = path.join(dir, `last-position-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  writeFileSync(out, JSON.stringify({ file, context: T, samples }, null, 2));
  console.log(`wrote ${out}`);
}

void main().catch((err) => {
  console.error(err);
  process.exit(1);
});
